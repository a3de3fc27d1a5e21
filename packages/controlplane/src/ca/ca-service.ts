// istio.v1.auth.IstioCertificateService/CreateCertificate. Signs a workload CSR only when the CSR
// is well formed (one SPIFFE URI SAN in our trust domain) and the caller may hold the identity:
// who is calling (authenticator.ts, token-review.ts) and what it may hold (authorizer.ts,
// node-authorizer.ts) are seams, so local and Kubernetes mode share these phases.

import {
  AmbientError,
  type CertificateAuthority,
  ErrorCode,
  findCode,
  type Logger,
  SpiffeId,
  validateWorkloadCsr,
} from "@ambient/core";
import * as grpc from "@grpc/grpc-js";
import { bearerOf, type Caller, type CallerAuthenticator } from "./authenticator.js";
import type { IdentityAuthorizer } from "./authorizer.js";
import { toGrpcStatus } from "./errors.js";

/** Istio's default workload certificate lifetime. */
export const DEFAULT_CERT_TTL_SECONDS = 24 * 3600;
/** Istio's default maximum (`MAX_WORKLOAD_CERT_TTL` = 90 days): longer requests are clamped. */
export const MAX_CERT_TTL_SECONDS = 90 * 24 * 3600;
/** The metadata key Istio's ztunnel uses to ask for a pod's identity on its behalf. */
export const IMPERSONATED_IDENTITY_KEY = "ImpersonatedIdentity";

interface StructValue {
  stringValue?: string;
}
export interface CreateCertificateRequest {
  csr: string;
  validityDuration: number;
  metadata?: { fields?: Record<string, StructValue> } | null;
}
export interface CreateCertificateResponse {
  certChain: string[];
}

export interface CaServiceOptions {
  ca: CertificateAuthority;
  authenticator: CallerAuthenticator;
  authorizer: IdentityAuthorizer;
  logger: Logger;
  /** Every request, before anything is checked (metrics). */
  onRequest?: () => void;
  onSigned?: (caller: Caller, identity: string, serial: string) => void;
  /** A refused request: its code (AMB_*), and whether the caller was not authenticated. */
  onRefused?: (code: string | undefined, unauthenticated: boolean) => void;
}

export function createCaHandlers(opts: CaServiceOptions): grpc.UntypedServiceImplementation {
  const log = opts.logger.child({ component: "ca" });
  return {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>,
      callback: grpc.sendUnaryData<CreateCertificateResponse>,
    ) => {
      opts.onRequest?.();
      handle(opts, call)
        .then((res) => callback(null, res))
        .catch((err: unknown) => {
          const { code, message } = toGrpcStatus(err);
          opts.onRefused?.(findCode(err), code === grpc.status.UNAUTHENTICATED);
          log.warn({ code: findCode(err), peer: call.getPeer() }, `certificate request refused: ${message}`);
          callback({ code, details: message, message });
        });
    },
  };
}

async function handle(
  opts: CaServiceOptions,
  call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>,
): Promise<CreateCertificateResponse> {
  // Phase 1: who is asking.
  const caller = await opts.authenticator.authenticate(bearerOf(call.metadata));

  // Phase 2: what is asked for. The CSR must be valid on its own before anything else.
  const req = call.request;
  if (!req.csr) throw new AmbientError(ErrorCode.CSR_INVALID, "request has no csr");
  const { identity } = await validateWorkloadCsr(req.csr, opts.ca.trustDomain);
  const impersonated = req.metadata?.fields?.[IMPERSONATED_IDENTITY_KEY]?.stringValue;
  if (impersonated !== undefined && impersonated !== "") {
    const asked = SpiffeId.tryParse(impersonated);
    if (!asked)
      throw new AmbientError(
        ErrorCode.CSR_INVALID,
        `${IMPERSONATED_IDENTITY_KEY} "${impersonated}" is not a SPIFFE ID`,
      );
    if (!asked.equals(identity)) {
      throw new AmbientError(
        ErrorCode.CSR_INVALID,
        `${IMPERSONATED_IDENTITY_KEY} ${asked} does not match the CSR's SAN ${identity}`,
      );
    }
  }

  // Phase 3: may this caller hold it.
  opts.authorizer.authorize(caller, identity, impersonated !== undefined && impersonated !== "");

  // Phase 4: sign.
  const requested = Number(req.validityDuration) || DEFAULT_CERT_TTL_SECONDS;
  const ttlSeconds = Math.min(Math.max(requested, 60), MAX_CERT_TTL_SECONDS);
  const signed = await opts.ca.sign(req.csr, { ttlSeconds, identity });
  opts.onSigned?.(caller, identity.toString(), signed.serial);
  return { certChain: signed.certChainPem };
}
