// Why the CA (or an xDS stream on the Kubernetes-mode port) refused a caller, with stable codes, and
// the one place a refusal becomes a gRPC status. Istio answers every node-authorizer failure with
// Unauthenticated; we keep "who are you" (UNAUTHENTICATED) apart from "you may not" (PERMISSION_DENIED)
// and say which rule failed, so an operator reads the fix from the proxy's log.

import { ErrorCode, errorMessage, findCode } from "@ambient/core";
import { status as GrpcStatus } from "@grpc/grpc-js";

export const CaErrorCode = {
  /** No `authorization: Bearer` header, or not a bearer token. */
  TOKEN_MISSING: "AMB_CA_TOKEN_MISSING",
  /** The API server's TokenReview did not authenticate the token (expired, wrong audience, pod gone...). */
  TOKEN_REJECTED: "AMB_CA_TOKEN_REJECTED",
  /** The token authenticated someone who is not a Kubernetes service account. */
  NOT_SERVICE_ACCOUNT: "AMB_CA_NOT_SERVICE_ACCOUNT",
  /** The TokenReview itself failed (API server unreachable, no RBAC for tokenreviews): try again. */
  TOKEN_REVIEW_FAILED: "AMB_CA_TOKEN_REVIEW_FAILED",
  /** Without ImpersonatedIdentity a caller may ask only for its own identity. */
  NOT_OWN_IDENTITY: "AMB_CA_NOT_OWN_IDENTITY",
  /** ImpersonatedIdentity from an account that is not in CA_TRUSTED_NODE_ACCOUNTS. */
  UNTRUSTED_NODE_ACCOUNT: "AMB_CA_UNTRUSTED_NODE_ACCOUNT",
  /** A node proxy's token must be bound to its pod: that pod says which node it runs on. */
  TOKEN_NOT_POD_BOUND: "AMB_CA_TOKEN_NOT_POD_BOUND",
  /** The caller's pod is not (or no longer) known with that uid and service account. */
  CALLER_POD_UNKNOWN: "AMB_CA_CALLER_POD_UNKNOWN",
  /** No pod with the requested identity runs on the caller's node. */
  IDENTITY_NOT_ON_NODE: "AMB_CA_IDENTITY_NOT_ON_NODE",
} as const;

const STATUS: Readonly<Record<string, GrpcStatus>> = {
  [CaErrorCode.TOKEN_MISSING]: GrpcStatus.UNAUTHENTICATED,
  [CaErrorCode.TOKEN_REJECTED]: GrpcStatus.UNAUTHENTICATED,
  [CaErrorCode.NOT_SERVICE_ACCOUNT]: GrpcStatus.UNAUTHENTICATED,
  [CaErrorCode.TOKEN_NOT_POD_BOUND]: GrpcStatus.UNAUTHENTICATED,
  [CaErrorCode.CALLER_POD_UNKNOWN]: GrpcStatus.UNAUTHENTICATED,
  [CaErrorCode.TOKEN_REVIEW_FAILED]: GrpcStatus.UNAVAILABLE,
  [CaErrorCode.NOT_OWN_IDENTITY]: GrpcStatus.PERMISSION_DENIED,
  [CaErrorCode.UNTRUSTED_NODE_ACCOUNT]: GrpcStatus.PERMISSION_DENIED,
  [CaErrorCode.IDENTITY_NOT_ON_NODE]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.UNAUTHENTICATED]: GrpcStatus.UNAUTHENTICATED,
  [ErrorCode.CSR_FORBIDDEN]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.CSR_INVALID]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.CERT_WRONG_TRUST_DOMAIN]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.IDENTITY_MALFORMED]: GrpcStatus.INVALID_ARGUMENT,
};

/** The one place CA and stream-authentication errors become gRPC statuses. */
export function toGrpcStatus(err: unknown): { code: GrpcStatus; message: string } {
  const message = errorMessage(err);
  const code = STATUS[findCode(err) ?? ""];
  return code === undefined
    ? { code: GrpcStatus.INTERNAL, message: `signing failed: ${message}` }
    : { code, message };
}
