// Typed errors with stable codes. Callers match on `code`, never on `instanceof`: pnpm can load
// two copies of a package, and an error may cross a process or wire boundary as plain data.

export interface AmbientErrorOptions {
  cause?: unknown;
  /** Structured facts for logs and API answers (file, field path, identity...). */
  details?: Record<string, unknown>;
}

export class AmbientError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: AmbientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AmbientError";
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Stable codes. Grouped by concern; a code never changes meaning once released. */
export const ErrorCode = {
  // configuration
  CONFIG_INVALID: "AMB_CONFIG_INVALID",
  // identity and certificates
  IDENTITY_MALFORMED: "AMB_IDENTITY_MALFORMED",
  CERT_EXPIRED: "AMB_CERT_EXPIRED",
  CERT_NOT_YET_VALID: "AMB_CERT_NOT_YET_VALID",
  CERT_WRONG_ISSUER: "AMB_CERT_WRONG_ISSUER",
  CERT_BAD_SIGNATURE: "AMB_CERT_BAD_SIGNATURE",
  CERT_NO_SPIFFE_SAN: "AMB_CERT_NO_SPIFFE_SAN",
  CERT_WRONG_TRUST_DOMAIN: "AMB_CERT_WRONG_TRUST_DOMAIN",
  CERT_CHAIN_EMPTY: "AMB_CERT_CHAIN_EMPTY",
  CERT_MALFORMED: "AMB_CERT_MALFORMED",
  CA_LOAD_FAILED: "AMB_CA_LOAD_FAILED",
  CSR_INVALID: "AMB_CSR_INVALID",
  CSR_FORBIDDEN: "AMB_CSR_FORBIDDEN",
  UNAUTHENTICATED: "AMB_UNAUTHENTICATED",
  // manifests and objects
  MANIFEST_PARSE: "AMB_MANIFEST_PARSE",
  OBJECT_INVALID: "AMB_OBJECT_INVALID",
  OBJECT_UNKNOWN_KIND: "AMB_OBJECT_UNKNOWN_KIND",
  // xDS
  XDS_DECODE: "AMB_XDS_DECODE",
  XDS_NACK: "AMB_XDS_NACK",
  XDS_STREAM: "AMB_XDS_STREAM",
  // the control plane connection: files Kubernetes mounts into a proxy's pod
  /** The bearer token file is missing, unreadable or empty; `details.path` names it. */
  TOKEN_UNREADABLE: "AMB_TOKEN_UNREADABLE",
  /** The control plane's root certificate file is missing, unreadable or holds no certificate. */
  ROOT_CERT_UNREADABLE: "AMB_ROOT_CERT_UNREADABLE",
  // lifecycle
  LISTEN_FAILED: "AMB_LISTEN_FAILED",
  DRAIN_TIMEOUT: "AMB_DRAIN_TIMEOUT",
  /** A file the binary ships with (its package.json, a compiled addon) is missing or unreadable. */
  INSTALL_BROKEN: "AMB_INSTALL_BROKEN",
} as const;

type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The first error in a `cause` chain (including `err` itself) that carries a string `code`. */
export function findCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when `err`, or anything in its `cause` chain, has `code`. */
export function hasCode(err: unknown, code: string): boolean {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    if ((cur as { code?: unknown }).code === code) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
