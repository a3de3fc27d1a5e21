// Why a request through the waypoint failed, typed once, and the one place (`classify`) that maps
// such an error — walking `cause` — to the status and body of the local reply, the Envoy response
// flag that metrics and access logs carry, and the log level. Nothing else in the request path
// writes a response flag or an error status.

import { AmbientError } from "@ambient/core";
import { ClusterErrorCode } from "../../cluster/errors.js";
import { UPSTREAM_CONNECT_FAILED } from "../upstream.js";

export const RequestErrorCode = {
  /** RequestAuthentication: a JWT that fails verification (details.status, details.reason). */
  UNAUTHENTICATED: "AMB_WP_UNAUTHENTICATED",
  /** AuthorizationPolicy said no. */
  DENIED: "AMB_WP_DENIED",
  /** A VirtualService owns the host but none of its rules matched. */
  NO_ROUTE: "AMB_WP_NO_ROUTE",
  /** Fault injection abort (details.status). */
  FAULT_ABORT: "AMB_WP_FAULT_ABORT",
  /** CONNECT (plain or extended): the waypoint terminates HTTP and does not open raw tunnels. */
  CONNECT_REFUSED: "AMB_WP_CONNECT_REFUSED",
  /** An HTTP/1.1 Upgrade request that declares a body. */
  UPGRADE_WITH_BODY: "AMB_WP_UPGRADE_WITH_BODY",
  /** The endpoint could not be reached (HBONE or TCP connect failed or timed out). */
  UPSTREAM_CONNECT: UPSTREAM_CONNECT_FAILED,
  /** The upstream connection or stream ended or was reset before a complete response. */
  UPSTREAM_RESET: "AMB_WP_UPSTREAM_RESET",
  /** The route timeout or per-try timeout passed. */
  UPSTREAM_TIMEOUT: "AMB_WP_UPSTREAM_TIMEOUT",
  /** No byte either way for the stream idle timeout (details.requestComplete). */
  STREAM_IDLE_TIMEOUT: "AMB_WP_STREAM_IDLE_TIMEOUT",
  /** The client went away (reset, closed) before the response was complete. */
  DOWNSTREAM_DISCONNECT: "AMB_WP_DOWNSTREAM_DISCONNECT",
  /** The headers of a request took longer than the request-headers bound. */
  REQUEST_HEADERS_TIMEOUT: "AMB_WP_REQUEST_HEADERS_TIMEOUT",
} as const;

export function requestError(
  code: string,
  message: string,
  opts: { cause?: unknown; details?: Record<string, unknown> } = {},
): AmbientError {
  return new AmbientError(code, message, opts);
}

export interface Classification {
  status: number;
  /** Envoy's response flag. */
  flag: string;
  /** Body of the local reply (Envoy's text where Envoy has one). */
  body: string;
  headers?: Record<string, string>;
  level: "debug" | "info" | "warn";
}

const RESET_BEFORE_HEADERS = "upstream connect error or disconnect/reset before headers. reset reason:";

/** `message`: the error's own, for answers that carry it as Envoy's do. */
type Rule = (details: Record<string, unknown>, message: string) => Classification;

const BY_CODE: Record<string, Rule> = {
  [RequestErrorCode.UNAUTHENTICATED]: (d) => ({
    status: typeof d.status === "number" ? d.status : 401,
    flag: "UAEX",
    body: typeof d.reason === "string" ? d.reason : "Jwt verification fails",
    headers: { "www-authenticate": "Bearer" },
    level: "info",
  }),
  [RequestErrorCode.DENIED]: () => ({
    status: 403,
    flag: "DENY",
    body: "RBAC: access denied",
    level: "info",
  }),
  [RequestErrorCode.NO_ROUTE]: () => ({ status: 404, flag: "NR", body: "", level: "info" }),
  [RequestErrorCode.FAULT_ABORT]: (d) => ({
    status: typeof d.status === "number" ? d.status : 503,
    flag: "FI",
    body: "fault filter abort",
    level: "debug",
  }),
  // Envoy answers an upgrade or CONNECT it is not configured for with 403 (details upgrade_failed).
  [RequestErrorCode.CONNECT_REFUSED]: () => ({
    status: 403,
    flag: "-",
    body: "CONNECT is not supported by the waypoint",
    level: "info",
  }),
  // Envoy's DPE: the downstream request broke the protocol.
  [RequestErrorCode.UPGRADE_WITH_BODY]: () => ({
    status: 400,
    flag: "DPE",
    body: "an Upgrade request must not have a body",
    level: "info",
  }),
  // Envoy adds why: "..., transport failure reason: delayed connect error: 111".
  [RequestErrorCode.UPSTREAM_CONNECT]: (_d, message) => ({
    status: 503,
    flag: "UF",
    body: `${RESET_BEFORE_HEADERS} connection failure, transport failure reason: ${message}`,
    level: "warn",
  }),
  [RequestErrorCode.UPSTREAM_RESET]: () => ({
    status: 503,
    flag: "UC",
    body: `${RESET_BEFORE_HEADERS} connection termination`,
    level: "warn",
  }),
  [RequestErrorCode.UPSTREAM_TIMEOUT]: () => ({
    status: 504,
    flag: "UT",
    body: "upstream request timeout",
    level: "info",
  }),
  // Envoy: 408 while the request is still arriving, 504 once it is waiting for the upstream.
  [RequestErrorCode.STREAM_IDLE_TIMEOUT]: (d) => ({
    status: d.requestComplete === false ? 408 : 504,
    flag: "SI",
    body: "stream timeout",
    level: "info",
  }),
  // Envoy logs 0 when nothing was sent to a client that left.
  [RequestErrorCode.DOWNSTREAM_DISCONNECT]: () => ({ status: 0, flag: "DC", body: "", level: "debug" }),
  [RequestErrorCode.REQUEST_HEADERS_TIMEOUT]: () => ({
    status: 408,
    flag: "-",
    body: "request header timeout",
    level: "info",
  }),
  [ClusterErrorCode.OVERFLOW]: () => ({
    status: 503,
    flag: "UO",
    body: `${RESET_BEFORE_HEADERS} overflow`,
    level: "info",
  }),
  [ClusterErrorCode.NO_HEALTHY_UPSTREAM]: () => ({
    status: 503,
    flag: "UH",
    body: "no healthy upstream",
    level: "warn",
  }),
  [ClusterErrorCode.CLUSTER_NOT_FOUND]: () => ({ status: 503, flag: "NC", body: "", level: "warn" }),
  [ClusterErrorCode.UNKNOWN_DESTINATION]: (d) => ({
    status: 503,
    flag: "NR",
    body: `no route to ${String(d.host ?? "the destination")}`,
    level: "info",
  }),
};

/** The first known code in the `cause` chain decides; anything unknown is our bug: 500, logged as warn. */
export function classify(err: unknown): Classification {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    const code = (cur as { code?: unknown }).code;
    const rule = typeof code === "string" ? BY_CODE[code] : undefined;
    if (rule)
      return rule((cur as { details?: Record<string, unknown> }).details ?? {}, (cur as Error).message ?? "");
    cur = (cur as { cause?: unknown }).cause;
  }
  return { status: 500, flag: "-", body: "internal error", level: "warn" };
}

/** Envoy's flag for a response that is the upstream's own answer after retries ran out. */
export const RETRIES_EXHAUSTED_FLAG = "URX";
/** Envoy's flag for an upstream answer kept because the cluster's retry budget was spent. */
export const RETRY_OVERFLOW_FLAG = "UO";
/** No flag: the request went through as asked. */
export const NO_FLAG = "-";
