// One call of Istio's certificate service as ztunnel makes it: a CSR for a pod's identity, sent
// with the node's bearer token and ImpersonatedIdentity in the request metadata (a waypoint in a
// pod asks for its own identity, without it). gRPC failures become typed errors once, here,
// carrying the CA's own message.

import {
  AmbientError,
  type CredentialsSource,
  ErrorCode,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  protos,
  type SpiffeId,
  structFromJson,
} from "@ambient/core";
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";

/**
 * Codes for failures that have no @ambient/core code yet. Stable once released, like the core
 * ones; they belong in core's ErrorCode when another package needs them.
 */
export const CertificateErrorCode = {
  /** The CA could not be reached, timed out, or failed internally: retried with backoff. */
  CA_REQUEST_FAILED: "AMB_CA_REQUEST_FAILED",
  /** A certificate was asked for an identity the manager does not hold. */
  CERT_NOT_MANAGED: "AMB_CERT_NOT_MANAGED",
  /** The manager was closed, or the identity was dropped, while someone waited. */
  CERT_MANAGER_CLOSED: "AMB_CERT_MANAGER_CLOSED",
} as const;

/** Istio's ztunnel sends this in the request's Struct metadata to ask for a pod's identity. */
const IMPERSONATED_IDENTITY = "ImpersonatedIdentity";

// A signing takes milliseconds; a CA that has not answered in this long is treated as down.
const DEFAULT_CALL_TIMEOUT_MS = 15_000;

export interface CaClientOptions {
  /** Plaintext when omitted; a function is asked before every call (a rotated root: new channel). */
  credentials?: CredentialsSource;
  channelOptions?: ChannelOptions;
  callTimeoutMs?: number;
  /**
   * Send ImpersonatedIdentity (default true): a node proxy asking for a pod's identity. False for a
   * proxy that asks for its own identity, which the CA then checks against the caller's token.
   */
  impersonate?: boolean;
}

export class CaClient {
  private client: Client | undefined;
  private clientCredentials: ChannelCredentials | undefined;
  private closed = false;
  private readonly callTimeoutMs: number;

  constructor(
    readonly address: string,
    private readonly opts: CaClientOptions = {},
  ) {
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  /** Signs `csrPem` for `id`; resolves with the chain (leaf first, root last) as the CA sent it. */
  async createCertificate(
    id: SpiffeId,
    csrPem: string,
    ttlSeconds: number,
    token: string,
  ): Promise<string[]> {
    const client = await this.channel();
    const method = protos().createCertificate;
    const metadata = new Metadata();
    // Local mode without a token file has nothing to send; the CA then refuses with its reason.
    if (token) metadata.set("authorization", `Bearer ${token}`);
    const request: IstioCertificateRequest = {
      csr: csrPem,
      validityDuration: ttlSeconds,
      metadata:
        this.opts.impersonate === false ? null : structFromJson({ [IMPERSONATED_IDENTITY]: id.toString() }),
    };
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize as (value: IstioCertificateRequest) => Buffer,
        method.responseDeserialize as (bytes: Buffer) => IstioCertificateResponse,
        request,
        metadata,
        { deadline: Date.now() + this.callTimeoutMs },
        (err, response) => {
          if (err) reject(this.callError(err, id));
          else resolve(response?.certChain ?? []);
        },
      );
    });
  }

  close(): void {
    this.closed = true;
    this.client?.close();
    this.client = undefined;
  }

  /** The channel for this call: the current one, or a new one when the credentials changed. */
  private async channel(): Promise<Client> {
    const source = this.opts.credentials;
    const creds =
      typeof source === "function"
        ? await source()
        : (source ?? this.clientCredentials ?? credentials.createInsecure());
    if (this.closed)
      throw new AmbientError(CertificateErrorCode.CERT_MANAGER_CLOSED, "the CA client is closed");
    if (this.client && creds === this.clientCredentials) return this.client;
    this.client?.close();
    this.clientCredentials = creds;
    this.client = new Client(this.address, creds, this.opts.channelOptions ?? {});
    return this.client;
  }

  /** The CA's refusal keeps its words: they say what to fix (a token, a pod on another node). */
  private callError(err: ServiceError, id: SpiffeId): AmbientError {
    const why = `${status[err.code] ?? err.code}: ${err.details || err.message}`;
    const details = { identity: id.toString(), ca: this.address, grpcCode: err.code };
    switch (err.code) {
      case status.UNAUTHENTICATED:
        return new AmbientError(ErrorCode.UNAUTHENTICATED, `CA refused the node token: ${why}`, {
          cause: err,
          details,
        });
      case status.PERMISSION_DENIED:
        return new AmbientError(ErrorCode.CSR_FORBIDDEN, `CA refused ${id}: ${why}`, { cause: err, details });
      case status.INVALID_ARGUMENT:
        return new AmbientError(ErrorCode.CSR_INVALID, `CA rejected the request for ${id}: ${why}`, {
          cause: err,
          details,
        });
      default:
        return new AmbientError(
          CertificateErrorCode.CA_REQUEST_FAILED,
          `certificate request for ${id} to CA ${this.address} failed: ${why}`,
          { cause: err, details },
        );
    }
  }
}
