// Why an opaque TCP connection through the waypoint failed or was cut, typed once, and the one
// place that turns such an error (walking `cause`) into the response flag metrics and the access
// log carry, and the level it is logged at. Flags are Envoy's words for the same events.

import { AmbientError } from "@ambient/core";
import { ClusterErrorCode } from "../cluster/errors.js";
import { UPSTREAM_CONNECT_FAILED } from "./upstream.js";

export const WaypointErrorCode = {
  /** L4 authorization refused the connection. */
  DENIED: "AMB_WAYPOINT_DENIED",
  /** The destination is neither a known service nor a workload. */
  NO_ROUTE: "AMB_WAYPOINT_NO_ROUTE",
  /** No bytes either way for connectionPool.tcp.idleTimeout. */
  IDLE_TIMEOUT: "AMB_WAYPOINT_IDLE_TIMEOUT",
  /** Open for connectionPool.tcp.maxConnectionDuration. */
  MAX_DURATION: "AMB_WAYPOINT_MAX_CONNECTION_DURATION",
  /** The client's tunnel went away before the upstream connection was up. */
  DOWNSTREAM_CLOSED: "AMB_WAYPOINT_DOWNSTREAM_CLOSED",
  /** Upstream connect failed or timed out (connectionPool.tcp.connectTimeout); see upstream.ts. */
  UPSTREAM_CONNECT: UPSTREAM_CONNECT_FAILED,
} as const;

export function waypointError(code: string, message: string, cause?: unknown): AmbientError {
  return new AmbientError(code, message, cause === undefined ? {} : { cause });
}

export interface Classification {
  /** Envoy's response flag. */
  flag: string;
  level: "debug" | "info" | "warn";
}

const BY_CODE: Record<string, Classification> = {
  // Envoy's RBAC filters leave no flag of their own; "DENY" is what ztunnel and the HTTP path report.
  [WaypointErrorCode.DENIED]: { flag: "DENY", level: "info" },
  [WaypointErrorCode.NO_ROUTE]: { flag: "NR", level: "info" },
  // SI: stream idle timeout. DT: max_connection_duration reached.
  [WaypointErrorCode.IDLE_TIMEOUT]: { flag: "SI", level: "info" },
  [WaypointErrorCode.MAX_DURATION]: { flag: "DT", level: "info" },
  [WaypointErrorCode.DOWNSTREAM_CLOSED]: { flag: "DC", level: "info" },
  [WaypointErrorCode.UPSTREAM_CONNECT]: { flag: "UF", level: "warn" },
  [ClusterErrorCode.OVERFLOW]: { flag: "UO", level: "warn" },
  [ClusterErrorCode.NO_HEALTHY_UPSTREAM]: { flag: "UH", level: "warn" },
  [ClusterErrorCode.CLUSTER_NOT_FOUND]: { flag: "NC", level: "warn" },
  [ClusterErrorCode.UNKNOWN_DESTINATION]: { flag: "NR", level: "info" },
};

/** The first code in the `cause` chain we know; anything else broke mid-stream (UC, as Envoy). */
export function classify(err: unknown): Classification {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && BY_CODE[code]) return BY_CODE[code];
    cur = (cur as { cause?: unknown }).cause;
  }
  return { flag: "UC", level: "info" };
}
