// Failures of the test API server, typed once, and the one place that turns any of them into the
// `Status` object a Kubernetes client reads (code, reason, message, details). Handlers throw;
// the router answers with `toStatus(err)`.

import { AmbientError, errorMessage, findCode } from "@ambient/core";

export const ApiErrorCode = {
  NOT_FOUND: "AMB_KUBE_NOT_FOUND",
  ALREADY_EXISTS: "AMB_KUBE_ALREADY_EXISTS",
  /** A resourceVersion precondition or uid precondition failed. */
  CONFLICT: "AMB_KUBE_CONFLICT",
  /** Server-side apply found fields owned by another manager (details.causes names them). */
  APPLY_CONFLICT: "AMB_KUBE_APPLY_CONFLICT",
  INVALID: "AMB_KUBE_INVALID",
  BAD_REQUEST: "AMB_KUBE_BAD_REQUEST",
  /** A watch or list from a resourceVersion older than the retained history. */
  EXPIRED: "AMB_KUBE_EXPIRED",
  UNSUPPORTED_MEDIA_TYPE: "AMB_KUBE_UNSUPPORTED_MEDIA_TYPE",
  METHOD_NOT_ALLOWED: "AMB_KUBE_METHOD_NOT_ALLOWED",
  UNAUTHORIZED: "AMB_KUBE_UNAUTHORIZED",
  /** A fault the test injected (5xx). */
  INJECTED: "AMB_KUBE_INJECTED_FAULT",
  /** A pod log or proxy backend failed or none is installed. */
  BACKEND_UNAVAILABLE: "AMB_KUBE_BACKEND_UNAVAILABLE",
  INTERNAL: "AMB_KUBE_INTERNAL",
} as const;

/** HTTP status and Status.reason per code: the single mapping (k8s.io/apimachinery StatusReason). */
const STATUS_OF: Record<string, { code: number; reason: string }> = {
  [ApiErrorCode.NOT_FOUND]: { code: 404, reason: "NotFound" },
  [ApiErrorCode.ALREADY_EXISTS]: { code: 409, reason: "AlreadyExists" },
  [ApiErrorCode.CONFLICT]: { code: 409, reason: "Conflict" },
  [ApiErrorCode.APPLY_CONFLICT]: { code: 409, reason: "Conflict" },
  [ApiErrorCode.INVALID]: { code: 422, reason: "Invalid" },
  [ApiErrorCode.BAD_REQUEST]: { code: 400, reason: "BadRequest" },
  [ApiErrorCode.EXPIRED]: { code: 410, reason: "Expired" },
  [ApiErrorCode.UNSUPPORTED_MEDIA_TYPE]: { code: 415, reason: "UnsupportedMediaType" },
  [ApiErrorCode.METHOD_NOT_ALLOWED]: { code: 405, reason: "MethodNotAllowed" },
  [ApiErrorCode.UNAUTHORIZED]: { code: 401, reason: "Unauthorized" },
  [ApiErrorCode.BACKEND_UNAVAILABLE]: { code: 503, reason: "ServiceUnavailable" },
  [ApiErrorCode.INTERNAL]: { code: 500, reason: "InternalError" },
};

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: { reason?: string; message: string; field?: string }[];
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: string;
  code: number;
  details?: StatusDetails;
}

export function apiError(
  code: string,
  message: string,
  details: StatusDetails & { httpStatus?: number } = {},
  cause?: unknown,
): AmbientError {
  const facts: Record<string, unknown> = { ...details };
  return new AmbientError(
    code,
    message,
    cause === undefined ? { details: facts } : { details: facts, cause },
  );
}

export function notFound(kind: string, group: string, name: string): AmbientError {
  // The wording clients print: `pods "web" not found`.
  return apiError(ApiErrorCode.NOT_FOUND, `${kind} "${name}" not found`, { kind, group, name });
}

export function badRequest(message: string): AmbientError {
  return apiError(ApiErrorCode.BAD_REQUEST, message);
}

export function invalid(
  kind: string,
  name: string,
  causes: { field: string; message: string }[],
): AmbientError {
  const text = causes.map((c) => `${c.field}: ${c.message}`).join(", ");
  return apiError(ApiErrorCode.INVALID, `${kind} "${name}" is invalid: ${text}`, {
    kind,
    name,
    causes: causes.map((c) => ({ reason: "FieldValueInvalid", ...c })),
  });
}

/** The Status for any thrown value; unknown errors are 500 InternalError with their message. */
export function toStatus(err: unknown): Status {
  const code = findCode(err);
  let cur: unknown = err;
  // The typed error carrying the code may sit under wrappers: read its details, not the wrapper's.
  while (cur && (cur as { code?: unknown }).code !== code) cur = (cur as { cause?: unknown }).cause;
  const details = ((cur as AmbientError | undefined)?.details ?? {}) as StatusDetails & {
    httpStatus?: number;
  };
  const mapped = (code === undefined ? undefined : STATUS_OF[code]) ?? { code: 500, reason: "InternalError" };
  const httpStatus = code === ApiErrorCode.INJECTED ? (details.httpStatus ?? 500) : mapped.code;
  const reason = code === ApiErrorCode.INJECTED ? injectedReason(httpStatus) : mapped.reason;
  const { httpStatus: _ignored, ...statusDetails } = details;
  const status: Status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: errorMessage(cur ?? err),
    reason,
    code: httpStatus,
  };
  if (Object.keys(statusDetails).length > 0) status.details = statusDetails;
  return status;
}

function injectedReason(httpStatus: number): string {
  if (httpStatus === 503) return "ServiceUnavailable";
  if (httpStatus === 504) return "Timeout";
  if (httpStatus === 429) return "TooManyRequests";
  return "InternalError";
}
