// Proxy failures, typed once and classified in one place: each code maps to the HBONE status the
// inbound side answers, the response flag metrics and access logs carry, and the log level.

import { AmbientError, findCode } from "@ambient/core";
import { Socks5ErrorCode } from "./socks5.js";

export const ProxyErrorCode = {
  /** Malformed request or :authority. */
  BAD_REQUEST: "AMB_PROXY_BAD_REQUEST",
  /** :authority names no workload served by this ztunnel. */
  UNKNOWN_DESTINATION: "AMB_PROXY_UNKNOWN_DESTINATION",
  /** The destination is one of ztunnel's own listeners on the pod (15001/15006/15008/15080). */
  OWN_PORT: "AMB_PROXY_OWN_PORT",
  /** L4 AuthorizationPolicy (or STRICT PeerAuthentication) said no. */
  DENIED: "AMB_PROXY_DENIED",
  /** The app (inbound) or the peer ztunnel (outbound) could not be reached. */
  UPSTREAM_CONNECT: "AMB_PROXY_UPSTREAM_CONNECT",
  /** A service with no healthy endpoint for the port. */
  NO_HEALTHY_UPSTREAM: "AMB_PROXY_NO_HEALTHY_UPSTREAM",
  /** A name we cannot resolve (an unknown *.svc.cluster.local host, a failed DNS lookup). */
  NO_ROUTE: "AMB_PROXY_NO_ROUTE",
  /** The source pod has no usable certificate yet. */
  NO_CERTIFICATE: "AMB_PROXY_NO_CERTIFICATE",
  /** A connection on 15001/15006 whose original destination is unknown (local mode has no capture). */
  NO_ORIGINAL_DESTINATION: "AMB_PROXY_NO_ORIGINAL_DESTINATION",
  /** An open connection closed because policy no longer allows it. */
  POLICY_CHANGED: "AMB_PROXY_POLICY_CHANGED",
  /** Closed at the drain deadline. */
  DRAINED: "AMB_PROXY_DRAINED",
  /** The downstream side (the HBONE stream, the client) went away before the connection was up. */
  DOWNSTREAM_CLOSED: "AMB_PROXY_DOWNSTREAM_CLOSED",
} as const;

export function proxyError(code: string, message: string, cause?: unknown): AmbientError {
  return new AmbientError(code, message, cause === undefined ? {} : { cause });
}

export interface Classification {
  /** HTTP status an HBONE server answers for this failure. */
  status: number;
  /** Response flag for metrics and access logs (Envoy's vocabulary where it has a word). */
  flag: string;
  level: "debug" | "info" | "warn";
}

const BY_CODE: Record<string, Classification> = {
  [ProxyErrorCode.BAD_REQUEST]: { status: 400, flag: "DPE", level: "info" },
  [ProxyErrorCode.OWN_PORT]: { status: 400, flag: "DPE", level: "info" },
  [ProxyErrorCode.UNKNOWN_DESTINATION]: { status: 503, flag: "NR", level: "info" },
  [ProxyErrorCode.DENIED]: { status: 401, flag: "DENY", level: "info" },
  [ProxyErrorCode.POLICY_CHANGED]: { status: 401, flag: "DENY", level: "info" },
  [ProxyErrorCode.UPSTREAM_CONNECT]: { status: 503, flag: "UF", level: "warn" },
  [ProxyErrorCode.NO_HEALTHY_UPSTREAM]: { status: 503, flag: "UH", level: "warn" },
  [ProxyErrorCode.NO_ROUTE]: { status: 503, flag: "NR", level: "info" },
  [ProxyErrorCode.NO_CERTIFICATE]: { status: 503, flag: "UF", level: "warn" },
  [ProxyErrorCode.NO_ORIGINAL_DESTINATION]: { status: 400, flag: "NR", level: "info" },
  [ProxyErrorCode.DRAINED]: { status: 503, flag: "DC", level: "info" },
  // A client that gives up before its connection is up is routine (and, in a reset flood, would be one
  // line per stream: the HBONE server logs the flood itself, once).
  [ProxyErrorCode.DOWNSTREAM_CLOSED]: { status: 503, flag: "DC", level: "debug" },
  // SOCKS5 handshakes (15080) that fail never reach a status; only the level is read. A stalled
  // client is worth a line, one that hangs up mid-greeting is not.
  [Socks5ErrorCode.TIMEOUT]: { status: 400, flag: "DPE", level: "info" },
  [Socks5ErrorCode.PROTOCOL]: { status: 400, flag: "DPE", level: "info" },
  [Socks5ErrorCode.NO_ACCEPTABLE_METHOD]: { status: 400, flag: "DPE", level: "info" },
  [Socks5ErrorCode.COMMAND_NOT_SUPPORTED]: { status: 400, flag: "DPE", level: "info" },
  [Socks5ErrorCode.ADDRESS_TYPE_NOT_SUPPORTED]: { status: 400, flag: "DPE", level: "info" },
  [Socks5ErrorCode.CLOSED]: { status: 400, flag: "DC", level: "debug" },
};

/** Walks the `cause` chain to the first code we know; HBONE answers keep their status. */
export function classify(err: unknown): Classification {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && BY_CODE[code]) return BY_CODE[code];
    const status = (cur as { details?: { status?: unknown } }).details?.status;
    if (typeof status === "number") {
      if (status === 401) return { status, flag: "DENY", level: "info" };
      return { status, flag: "UF", level: "warn" };
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  const code = findCode(err);
  if (code === "ECONNREFUSED" || code === "ETIMEDOUT" || code === "EHOSTUNREACH")
    return { status: 503, flag: "UF", level: "warn" };
  return { status: 503, flag: "UF", level: "warn" };
}
