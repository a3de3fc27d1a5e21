// The one place that says what a failure means on the wire, for ztunnel (HBONE, plaintext, SOCKS5)
// and the waypoint (HTTP and opaque TCP) alike: the HTTP status an HBONE server or the waypoint
// answers, the Envoy response flag metrics and access logs carry, the SOCKS5 reply, the log level,
// and whether the downstream connection is reset or closed. Linkerd calls this `rescue`.
//
// Rows are partial: walking the `cause` chain outward-in, each field comes from the first row that
// sets it. So `AMB_PROXY_UPSTREAM_CONNECT` decides the flag (UF) while the ECONNREFUSED it wraps
// decides the SOCKS5 reply (connection refused), and an error no row knows falls to DEFAULT.

import {
  ClusterErrorCode,
  HboneErrorCode,
  ProxyErrorCode,
  Socks5ErrorCode,
  SystemErrorCode,
  WaypointErrorCode,
} from "./codes.js";

/** RFC 1928 §6 reply codes. */
export const Socks5Reply = {
  SUCCEEDED: 0,
  GENERAL_FAILURE: 1,
  NOT_ALLOWED: 2,
  NETWORK_UNREACHABLE: 3,
  HOST_UNREACHABLE: 4,
  CONNECTION_REFUSED: 5,
  TTL_EXPIRED: 6,
  COMMAND_NOT_SUPPORTED: 7,
  ADDRESS_TYPE_NOT_SUPPORTED: 8,
} as const;
export type Socks5ReplyCode = (typeof Socks5Reply)[keyof typeof Socks5Reply];

type Level = "debug" | "info" | "warn";

export interface Classification {
  /** HTTP status: an HBONE server's answer to CONNECT, or the waypoint's local reply. 0: no answer. */
  status: number;
  /** Envoy's response flag ("-" for none), for metrics and access logs. */
  flag: string;
  /** The SOCKS5 reply a client of 15080 gets. */
  socks5: Socks5ReplyCode;
  /** How loudly the failure is logged (once, by whoever ends the connection). */
  level: Level;
  /** A connection that cannot carry a status ends this way: TCP RST / RST_STREAM, or FIN / END_STREAM. */
  end: "reset" | "close";
  /** The waypoint's local reply body (Envoy's text where Envoy has one). */
  body: string;
  headers?: Record<string, string>;
}

type Row = Partial<Classification> & {
  /**
   * The level when the failure is a peer's connection to us (the HBONE server's side), where a
   * failed handshake is routine (scanners, plaintext clients), unlike our own connect failing.
   */
  serverLevel?: Level;
};
/** A row that reads the error's `details` (an HBONE answer's status, a fault's status) or message. */
type Rule = (details: Record<string, unknown>, message: string) => Row;

const RESET_BEFORE_HEADERS = "upstream connect error or disconnect/reset before headers. reset reason:";
const {
  GENERAL_FAILURE,
  NOT_ALLOWED,
  NETWORK_UNREACHABLE,
  HOST_UNREACHABLE,
  CONNECTION_REFUSED,
  TTL_EXPIRED,
} = Socks5Reply;

/** What an error no row describes gets: something broke mid-stream, and we do not know why. */
export const DEFAULT_CLASSIFICATION: Classification = {
  status: 503,
  flag: "UC",
  socks5: GENERAL_FAILURE,
  level: "warn",
  end: "reset",
  body: `${RESET_BEFORE_HEADERS} connection termination`,
};

/** What a peer's HBONE CONNECT answer means here (ztunnel answers 401 on a policy denial). */
function hboneAnswer(d: Record<string, unknown>): Row {
  const status = typeof d.status === "number" ? d.status : 503;
  if (status === 401 || status === 403) return { status, flag: "DENY", socks5: NOT_ALLOWED, level: "info" };
  if (status === 504) return { status, flag: "UF", socks5: TTL_EXPIRED, level: "warn" };
  if (status === 503) return { status, flag: "UF", socks5: CONNECTION_REFUSED, level: "warn" };
  return { status, flag: "UF", socks5: GENERAL_FAILURE, level: "warn" };
}

const TABLE: Readonly<Record<string, Row | Rule>> = {
  // ---- HBONE client: connecting out (ztunnel outbound, the waypoint's upstream) ----
  [HboneErrorCode.TLS]: { status: 503, flag: "UF", level: "warn", serverLevel: "debug" },
  [HboneErrorCode.IDENTITY_MISMATCH]: { status: 503, flag: "UF", level: "warn" },
  [HboneErrorCode.PEER_UNTRUSTED]: { status: 503, flag: "UF", level: "warn", serverLevel: "info" },
  [HboneErrorCode.CERT_REJECTED]: { status: 503, flag: "UF", level: "warn" },
  [HboneErrorCode.CONNECT_REFUSED]: hboneAnswer,
  // socks5 left to the cause: the ECONNREFUSED or EHOSTUNREACH the connect failed with.
  [HboneErrorCode.CONNECT_FAILED]: { status: 503, flag: "UF", level: "warn", serverLevel: "debug" },
  [HboneErrorCode.STREAM_RESET]: { status: 503, flag: "UC", level: "info" },
  [HboneErrorCode.TIMEOUT]: {
    status: 503,
    flag: "UF",
    socks5: TTL_EXPIRED,
    level: "warn",
    serverLevel: "info",
  },
  // The caller gave up because its own client left: routine, and one line per stream in a flood.
  [HboneErrorCode.ABORTED]: { status: 0, flag: "DC", level: "debug" },
  [HboneErrorCode.INVALID_REQUEST]: { status: 503, flag: "UF", level: "warn" },
  // ---- HBONE server: a peer holding or abusing 15008 (one line per session, never per frame).
  // Handshake failures are debug: scanners and plaintext clients are routine on a mesh port. An
  // authenticated peer that breaks HTTP/2 is worth a line; a reset flood, a warning. ----
  [HboneErrorCode.HANDSHAKE_TIMEOUT]: { status: 0, flag: "DPE", level: "debug", end: "close" },
  [HboneErrorCode.IDLE]: { status: 0, flag: "DPE", level: "info", end: "close" },
  [HboneErrorCode.PROTOCOL]: { status: 400, flag: "DPE", level: "info" },
  [HboneErrorCode.RESET_FLOOD]: { status: 0, flag: "DPE", level: "warn" },
  [HboneErrorCode.STREAM_REFUSED]: { status: 0, flag: "DPE", level: "info" },
  [HboneErrorCode.HEADERS_REFUSED]: { status: 431, flag: "DPE", level: "info" },

  // ---- ztunnel ----
  [ProxyErrorCode.BAD_REQUEST]: { status: 400, flag: "DPE", level: "info" },
  [ProxyErrorCode.OWN_PORT]: { status: 400, flag: "DPE", level: "info" },
  [ProxyErrorCode.UNKNOWN_DESTINATION]: { status: 503, flag: "NR", socks5: HOST_UNREACHABLE, level: "info" },
  [ProxyErrorCode.DENIED]: { status: 401, flag: "DENY", socks5: NOT_ALLOWED, level: "info" },
  [ProxyErrorCode.POLICY_CHANGED]: { status: 401, flag: "DENY", socks5: NOT_ALLOWED, level: "info" },
  [ProxyErrorCode.UPSTREAM_CONNECT]: { status: 503, flag: "UF", level: "warn" },
  [ProxyErrorCode.NO_HEALTHY_UPSTREAM]: { status: 503, flag: "UH", socks5: HOST_UNREACHABLE, level: "warn" },
  [ProxyErrorCode.NO_ROUTE]: { status: 503, flag: "NR", socks5: HOST_UNREACHABLE, level: "info" },
  [ProxyErrorCode.NO_CERTIFICATE]: { status: 503, flag: "UF", level: "warn" },
  [ProxyErrorCode.NO_ORIGINAL_DESTINATION]: { status: 400, flag: "NR", level: "info" },
  [ProxyErrorCode.DRAINED]: { status: 503, flag: "DC", level: "info", end: "close" },
  // A client that gives up before its connection is up is routine (and, in a reset flood, would be
  // one line per stream: the HBONE server logs the flood itself, once).
  [ProxyErrorCode.DOWNSTREAM_CLOSED]: { status: 0, flag: "DC", level: "debug" },

  // ---- SOCKS5 handshakes: the reply (when there is one) is sent, then the connection closes. A
  // stalled client is worth a line, one that hangs up mid-greeting is not. ----
  [Socks5ErrorCode.PROTOCOL]: { status: 400, flag: "DPE", level: "info", end: "close" },
  [Socks5ErrorCode.TIMEOUT]: { status: 408, flag: "DPE", socks5: TTL_EXPIRED, level: "info", end: "close" },
  [Socks5ErrorCode.CLOSED]: { status: 0, flag: "DC", level: "debug", end: "close" },
  [Socks5ErrorCode.NO_ACCEPTABLE_METHOD]: { status: 400, flag: "DPE", level: "info", end: "close" },
  [Socks5ErrorCode.COMMAND_NOT_SUPPORTED]: {
    status: 400,
    flag: "DPE",
    socks5: Socks5Reply.COMMAND_NOT_SUPPORTED,
    level: "info",
    end: "close",
  },
  [Socks5ErrorCode.ADDRESS_TYPE_NOT_SUPPORTED]: {
    status: 400,
    flag: "DPE",
    socks5: Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED,
    level: "info",
    end: "close",
  },

  // ---- the waypoint ----
  [WaypointErrorCode.UNAUTHENTICATED]: (d) => ({
    status: typeof d.status === "number" ? d.status : 401,
    flag: "UAEX",
    socks5: NOT_ALLOWED,
    body: typeof d.reason === "string" ? d.reason : "Jwt verification fails",
    headers: { "www-authenticate": "Bearer" },
    level: "info",
  }),
  // Envoy's RBAC filters leave no flag of their own; "DENY" is what ztunnel reports too.
  [WaypointErrorCode.DENIED]: {
    status: 403,
    flag: "DENY",
    socks5: NOT_ALLOWED,
    body: "RBAC: access denied",
    level: "info",
  },
  [WaypointErrorCode.ROUTE_NOT_MATCHED]: { status: 404, flag: "NR", body: "", level: "info" },
  [WaypointErrorCode.FAULT_ABORT]: (d) => ({
    status: typeof d.status === "number" ? d.status : 503,
    flag: "FI",
    body: "fault filter abort",
    level: "debug",
  }),
  // Envoy answers an upgrade or CONNECT it is not configured for with 403 (details upgrade_failed).
  [WaypointErrorCode.CONNECT_REFUSED]: {
    status: 403,
    flag: "-",
    body: "CONNECT is not supported by the waypoint",
    level: "info",
  },
  [WaypointErrorCode.UPGRADE_WITH_BODY]: {
    status: 400,
    flag: "DPE",
    body: "an Upgrade request must not have a body",
    level: "info",
  },
  // As ztunnel answers a CONNECT for a workload it does not serve.
  [WaypointErrorCode.NOT_SERVED]: { status: 503, flag: "NR", level: "info" },
  // Envoy adds why: "..., transport failure reason: delayed connect error: 111".
  [WaypointErrorCode.UPSTREAM_CONNECT]: (_d, message) => ({
    status: 503,
    flag: "UF",
    body: `${RESET_BEFORE_HEADERS} connection failure, transport failure reason: ${message}`,
    level: "warn",
  }),
  [WaypointErrorCode.UPSTREAM_RESET]: {
    status: 503,
    flag: "UC",
    body: `${RESET_BEFORE_HEADERS} connection termination`,
    level: "warn",
  },
  [WaypointErrorCode.UPSTREAM_TIMEOUT]: {
    status: 504,
    flag: "UT",
    body: "upstream request timeout",
    level: "info",
  },
  // SI: stream idle timeout; Envoy answers 408 while the request is still arriving, 504 after.
  [WaypointErrorCode.IDLE_TIMEOUT]: (d) => ({
    status: d.requestComplete === false ? 408 : 504,
    flag: "SI",
    body: "stream timeout",
    level: "info",
    end: "close",
  }),
  // DT: max_connection_duration reached.
  [WaypointErrorCode.MAX_DURATION]: { status: 503, flag: "DT", body: "", level: "info", end: "close" },
  // Envoy logs 0 when nothing was sent to a client that left.
  [WaypointErrorCode.DOWNSTREAM_CLOSED]: { status: 0, flag: "DC", body: "", level: "info" },
  [WaypointErrorCode.REQUEST_HEADERS_TIMEOUT]: {
    status: 408,
    flag: "-",
    body: "request header timeout",
    level: "info",
    end: "close",
  },
  [ClusterErrorCode.OVERFLOW]: {
    status: 503,
    flag: "UO",
    body: `${RESET_BEFORE_HEADERS} overflow`,
    level: "warn",
  },
  [ClusterErrorCode.NO_HEALTHY_UPSTREAM]: {
    status: 503,
    flag: "UH",
    socks5: HOST_UNREACHABLE,
    body: "no healthy upstream",
    level: "warn",
  },
  [ClusterErrorCode.CLUSTER_NOT_FOUND]: { status: 503, flag: "NC", body: "", level: "warn" },
  [ClusterErrorCode.INVALID_BACKEND]: (d) => ({
    status: 500,
    flag: "NC",
    body: `invalid backend ${String(d.backend ?? "")}`.trim(),
    level: "info",
  }),
  [ClusterErrorCode.UNKNOWN_DESTINATION]: (d) => ({
    status: 503,
    flag: "NR",
    socks5: HOST_UNREACHABLE,
    body: `no route to ${String(d.host ?? "the destination")}`,
    level: "info",
  }),

  // ---- Node's and the OS's codes: connect failures are UF, a connection cut mid-stream is UC. A
  // code means a known way for a network to fail, so info, not the warning an uncoded bug gets. ----
  [SystemErrorCode.ECONNREFUSED]: { flag: "UF", socks5: CONNECTION_REFUSED, level: "info" },
  [SystemErrorCode.ETIMEDOUT]: { flag: "UF", socks5: TTL_EXPIRED, level: "info" },
  [SystemErrorCode.EHOSTUNREACH]: { flag: "UF", socks5: HOST_UNREACHABLE, level: "info" },
  [SystemErrorCode.EHOSTDOWN]: { flag: "UF", socks5: HOST_UNREACHABLE, level: "info" },
  [SystemErrorCode.ENETUNREACH]: { flag: "UF", socks5: NETWORK_UNREACHABLE, level: "info" },
  [SystemErrorCode.ENETDOWN]: { flag: "UF", socks5: NETWORK_UNREACHABLE, level: "info" },
  [SystemErrorCode.ENOTFOUND]: { flag: "NR", socks5: HOST_UNREACHABLE, level: "info" },
  [SystemErrorCode.EAI_AGAIN]: { flag: "NR", socks5: HOST_UNREACHABLE, level: "info" },
  [SystemErrorCode.EADDRNOTAVAIL]: { flag: "UF", socks5: GENERAL_FAILURE, level: "warn" },
  [SystemErrorCode.ECONNRESET]: { flag: "UC", level: "info" },
  [SystemErrorCode.EPIPE]: { flag: "UC", level: "info" },
  [SystemErrorCode.ERR_STREAM_PREMATURE_CLOSE]: { flag: "UC", level: "info" },
  [SystemErrorCode.ERR_HTTP2_STREAM_CANCEL]: { flag: "UC", level: "info" },
  [SystemErrorCode.ERR_HTTP2_STREAM_ERROR]: { flag: "UC", level: "info" },
  [SystemErrorCode.ERR_HTTP2_SESSION_ERROR]: { flag: "UC", level: "info" },
  [SystemErrorCode.ERR_HTTP2_GOAWAY_SESSION]: { flag: "UC", level: "info" },
  [SystemErrorCode.ERR_HTTP2_INVALID_SESSION]: { flag: "UC", level: "info" },
};

const FIELDS = ["status", "flag", "socks5", "level", "end", "body", "headers"] as const;

/**
 * What `err` means on the wire; see the module comment for how rows combine along `cause`.
 * `side: "server"`: the failure is a peer's connection to our server (its level may be lower).
 */
export function classify(err: unknown, side: "client" | "server" = "client"): Classification {
  const out: Partial<Classification> = {};
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    const code = (cur as { code?: unknown }).code;
    const entry = typeof code === "string" ? TABLE[code] : undefined;
    if (entry) {
      const row =
        typeof entry === "function"
          ? entry((cur as { details?: Record<string, unknown> }).details ?? {}, (cur as Error).message ?? "")
          : entry;
      if (side === "server" && out.level === undefined && row.serverLevel) out.level = row.serverLevel;
      for (const f of FIELDS)
        if (out[f] === undefined && row[f] !== undefined) (out as Row)[f] = row[f] as never;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return { ...DEFAULT_CLASSIFICATION, ...out };
}

/** True when the classifier has a row for `code` (the table test holds every catalogued code to it). */
export function isClassified(code: string): boolean {
  return code in TABLE;
}
