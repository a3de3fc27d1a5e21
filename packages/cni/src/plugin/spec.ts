// The parts of the CNI specification (1.0.0 / 1.1.0) the plugin speaks: versions, the well-known
// error codes and the error object a runtime reads from stdout. Node builtins only: the plugin is
// exec'd once per pod sandbox and must start fast.

/** Oldest first. 0.3.0 is the first spec with plugin chaining and the `ips`/`interfaces` result. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const LATEST_VERSION = "1.1.0";

/** The spec's well-known codes (0-99 reserved) and ours (100+, plugin-specific). */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** STATUS (1.1.0): the plugin cannot serve ADD now. */
  NOT_AVAILABLE: 50,
  /** Ours: the node agent answered the ADD with an error (its message is `msg`). */
  AGENT_REJECTED: 100,
  /** Ours: the node agent answered something that is not the agent protocol. */
  AGENT_PROTOCOL: 101,
  /** libcni's ErrInternal: a bug in the plugin. */
  INTERNAL: 999,
} as const;

export class CniError extends Error {
  override readonly name = "CniError";
  constructor(
    readonly code: number,
    message: string,
    /** The spec's optional `details` string: the longer explanation, kept out of `msg`. */
    readonly details?: string,
  ) {
    super(message);
  }
}

/** The error object printed to stdout (with a non-zero exit) for a runtime to read. */
export function errorJson(err: CniError, cniVersion: string): string {
  const out: Record<string, unknown> = { cniVersion, code: err.code, msg: err.message };
  if (err.details) out.details = err.details;
  return `${JSON.stringify(out)}\n`;
}

export function isSupportedVersion(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares dotted versions numerically ("0.10.0" > "0.4.0"); missing parts count as 0. */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}
