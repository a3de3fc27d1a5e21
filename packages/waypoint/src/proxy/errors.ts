// Why a request or an opaque TCP connection through the waypoint failed or was cut, typed once, and
// the one place (`classify`) that maps such an error — walking `cause` — to what the client is
// answered (status, body; HTTP only), the Envoy response flag metrics and access logs carry, and
// the log level. Nothing else in the waypoint writes a response flag or an error status.

import { AmbientError } from "@ambient/core";
import { ClusterErrorCode } from "../cluster/errors.js";
import { UPSTREAM_CONNECT_FAILED } from "./upstream.js";

export const WaypointErrorCode = {
  /** RequestAuthentication: a JWT that fails verification (details.status, details.reason). */
  UNAUTHENTICATED: "AMB_WAYPOINT_UNAUTHENTICATED",
  /** AuthorizationPolicy said no (HTTP, or L4 for opaque TCP). */
  DENIED: "AMB_WAYPOINT_DENIED",
  /** A VirtualService owns the host but none of its rules matched. */
  ROUTE_NOT_MATCHED: "AMB_WAYPOINT_ROUTE_NOT_MATCHED",
  /** Fault injection abort (details.status). */
  FAULT_ABORT: "AMB_WAYPOINT_FAULT_ABORT",
  /** CONNECT (plain or extended): the waypoint terminates HTTP and opens no raw tunnels. */
  CONNECT_REFUSED: "AMB_WAYPOINT_CONNECT_REFUSED",
  /** An HTTP/1.1 Upgrade request that declares a body. */
  UPGRADE_WITH_BODY: "AMB_WAYPOINT_UPGRADE_WITH_BODY",
  /** Upstream connect failed or timed out (connectionPool.tcp.connectTimeout); see upstream.ts. */
  UPSTREAM_CONNECT: UPSTREAM_CONNECT_FAILED,
  /** The upstream connection or stream ended or was reset before a complete response. */
  UPSTREAM_RESET: "AMB_WAYPOINT_UPSTREAM_RESET",
  /** The route timeout or per-try timeout passed (details.perTry). */
  UPSTREAM_TIMEOUT: "AMB_WAYPOINT_UPSTREAM_TIMEOUT",
  /**
   * No bytes either way for the idle bound: an HTTP stream (details.requestComplete says whether
   * the request had all arrived) or an opaque connection (connectionPool.tcp.idleTimeout).
   */
  IDLE_TIMEOUT: "AMB_WAYPOINT_IDLE_TIMEOUT",
  /** Open for connectionPool.tcp.maxConnectionDuration. */
  MAX_DURATION: "AMB_WAYPOINT_MAX_CONNECTION_DURATION",
  /** The client (its tunnel, stream or connection) went away before the answer was complete. */
  DOWNSTREAM_CLOSED: "AMB_WAYPOINT_DOWNSTREAM_CLOSED",
  /** The headers of a request took longer than the request-headers bound. */
  REQUEST_HEADERS_TIMEOUT: "AMB_WAYPOINT_REQUEST_HEADERS_TIMEOUT",
} as const;

export function waypointError(
  code: string,
  message: string,
  opts: { cause?: unknown; details?: Record<string, unknown> } = {},
): AmbientError {
  return new AmbientError(code, message, opts);
}

export interface Classification {
  /** What an HTTP client is answered (opaque TCP has no answer to give). */
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

const fixed =
  (status: number, flag: string, body: string, level: Classification["level"]): Rule =>
  () => ({ status, flag, body, level });

const BY_CODE: Record<string, Rule> = {
  [WaypointErrorCode.UNAUTHENTICATED]: (d) => ({
    status: typeof d.status === "number" ? d.status : 401,
    flag: "UAEX",
    body: typeof d.reason === "string" ? d.reason : "Jwt verification fails",
    headers: { "www-authenticate": "Bearer" },
    level: "info",
  }),
  // Envoy's RBAC filters leave no flag of their own; "DENY" is what ztunnel reports too.
  [WaypointErrorCode.DENIED]: fixed(403, "DENY", "RBAC: access denied", "info"),
  [WaypointErrorCode.ROUTE_NOT_MATCHED]: fixed(404, "NR", "", "info"),
  [WaypointErrorCode.FAULT_ABORT]: (d) => ({
    status: typeof d.status === "number" ? d.status : 503,
    flag: "FI",
    body: "fault filter abort",
    level: "debug",
  }),
  // Envoy answers an upgrade or CONNECT it is not configured for with 403 (details upgrade_failed).
  [WaypointErrorCode.CONNECT_REFUSED]: fixed(403, "-", "CONNECT is not supported by the waypoint", "info"),
  // DPE: the downstream request broke the protocol.
  [WaypointErrorCode.UPGRADE_WITH_BODY]: fixed(400, "DPE", "an Upgrade request must not have a body", "info"),
  // Envoy adds why: "..., transport failure reason: delayed connect error: 111".
  [WaypointErrorCode.UPSTREAM_CONNECT]: (_d, message) => ({
    status: 503,
    flag: "UF",
    body: `${RESET_BEFORE_HEADERS} connection failure, transport failure reason: ${message}`,
    level: "warn",
  }),
  [WaypointErrorCode.UPSTREAM_RESET]: fixed(
    503,
    "UC",
    `${RESET_BEFORE_HEADERS} connection termination`,
    "warn",
  ),
  [WaypointErrorCode.UPSTREAM_TIMEOUT]: fixed(504, "UT", "upstream request timeout", "info"),
  // SI: stream idle timeout; Envoy answers 408 while the request is still arriving, 504 after.
  [WaypointErrorCode.IDLE_TIMEOUT]: (d) => ({
    status: d.requestComplete === false ? 408 : 504,
    flag: "SI",
    body: "stream timeout",
    level: "info",
  }),
  // DT: max_connection_duration reached.
  [WaypointErrorCode.MAX_DURATION]: fixed(503, "DT", "", "info"),
  // Envoy logs 0 when nothing was sent to a client that left.
  [WaypointErrorCode.DOWNSTREAM_CLOSED]: fixed(0, "DC", "", "info"),
  [WaypointErrorCode.REQUEST_HEADERS_TIMEOUT]: fixed(408, "-", "request header timeout", "info"),
  [ClusterErrorCode.OVERFLOW]: fixed(503, "UO", `${RESET_BEFORE_HEADERS} overflow`, "warn"),
  [ClusterErrorCode.NO_HEALTHY_UPSTREAM]: fixed(503, "UH", "no healthy upstream", "warn"),
  [ClusterErrorCode.CLUSTER_NOT_FOUND]: fixed(503, "NC", "", "warn"),
  [ClusterErrorCode.UNKNOWN_DESTINATION]: (d) => ({
    status: 503,
    flag: "NR",
    body: `no route to ${String(d.host ?? "the destination")}`,
    level: "info",
  }),
};

/**
 * The first known code in the `cause` chain decides. Anything else broke mid-stream (UC, as Envoy
 * says): logged at info when it carries a system code (ECONNRESET...), at warn when it carries no
 * code at all, which means a bug of ours.
 */
export function classify(err: unknown): Classification {
  let cur: unknown = err;
  let anyCode = false;
  for (let depth = 0; cur && depth < 16; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") anyCode = true;
    const rule = typeof code === "string" ? BY_CODE[code] : undefined;
    if (rule)
      return rule((cur as { details?: Record<string, unknown> }).details ?? {}, (cur as Error).message ?? "");
    cur = (cur as { cause?: unknown }).cause;
  }
  return {
    status: 503,
    flag: "UC",
    body: `${RESET_BEFORE_HEADERS} connection termination`,
    level: anyCode ? "info" : "warn",
  };
}

/** Envoy's flag for a response that is the upstream's own answer after retries ran out. */
export const RETRIES_EXHAUSTED_FLAG = "URX";
/** Envoy's flag for an upstream answer kept because the cluster's retry budget was spent. */
export const RETRY_OVERFLOW_FLAG = "UO";
/** No flag: the request went through as asked. */
export const NO_FLAG = "-";
