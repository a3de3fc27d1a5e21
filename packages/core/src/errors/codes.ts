// Every code a connection or request can fail with, in both proxies, in one catalogue: the
// classifier (classify.ts) has a row for each, and a table test holds it to that. Codes are stable
// strings; callers match on them (walking `cause`), never on classes. Grouped by where they arise.

/** The HBONE client (connecting out) and server (a peer that holds or abuses port 15008). */
export const HboneErrorCode = {
  /** The TLS handshake failed for a reason other than trust (protocol version, ALPN, not TLS). */
  TLS: "AMB_HBONE_TLS",
  /** The server's SPIFFE ID is valid but not one the caller expected for that destination. */
  IDENTITY_MISMATCH: "AMB_HBONE_IDENTITY_MISMATCH",
  /** The peer's certificate is not trusted: wrong CA, expired, no SPIFFE ID, other trust domain. */
  PEER_UNTRUSTED: "AMB_HBONE_PEER_UNTRUSTED",
  /** The peer refused our certificate (a TLS alert after our handshake finished). */
  CERT_REJECTED: "AMB_HBONE_CERT_REJECTED",
  /** The CONNECT was answered with a status other than 200; `details.status` holds it. */
  CONNECT_REFUSED: "AMB_HBONE_CONNECT_REFUSED",
  /** The TCP connection could not be made or the HTTP/2 session broke before an answer. */
  CONNECT_FAILED: "AMB_HBONE_CONNECT_FAILED",
  /** The stream was reset (RST_STREAM) or its session went away; `details.rstCode` when known. */
  STREAM_RESET: "AMB_HBONE_STREAM_RESET",
  /** Connect deadline passed, or a keepalive PING went unanswered. */
  TIMEOUT: "AMB_HBONE_TIMEOUT",
  /** The caller's AbortSignal fired (its client went away). */
  ABORTED: "AMB_HBONE_ABORTED",
  /** A bad argument from the caller (no expected identities, malformed destination): a bug of ours. */
  INVALID_REQUEST: "AMB_HBONE_INVALID_REQUEST",
  /** The client did not finish the TLS handshake within the bound. */
  HANDSHAKE_TIMEOUT: "AMB_HBONE_HANDSHAKE_TIMEOUT",
  /** The session sent no CONNECT within the bound after its handshake, or had none open for too long. */
  IDLE: "AMB_HBONE_IDLE",
  /** The client broke HTTP/2 (bad preface, CONTINUATION flood, invalid frames): Node ended the session. */
  PROTOCOL: "AMB_HBONE_PROTOCOL",
  /** Too many streams reset by the client before their answer, or refused: rapid reset (CVE-2023-44487). */
  RESET_FLOOD: "AMB_HBONE_RESET_FLOOD",
  /** A stream past the session's concurrency limit, refused on its own with REFUSED_STREAM. */
  STREAM_REFUSED: "AMB_HBONE_STREAM_REFUSED",
  /** Streams Node reset before they reached us: a header block past SETTINGS_MAX_HEADER_LIST_SIZE. */
  HEADERS_REFUSED: "AMB_HBONE_HEADERS_REFUSED",
} as const;

/** ztunnel's connection path (inbound HBONE, inbound plaintext, outbound). */
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

/** ztunnel's SOCKS5 listener (15080): the handshake. */
export const Socks5ErrorCode = {
  /** Not SOCKS5: wrong version byte, an empty or malformed address. */
  PROTOCOL: "AMB_SOCKS_PROTOCOL",
  /** The handshake did not complete within the timeout. */
  TIMEOUT: "AMB_SOCKS_TIMEOUT",
  /** The client closed or reset the connection mid-handshake. */
  CLOSED: "AMB_SOCKS_CLOSED",
  /** The client offered no method we accept (we accept only 0x00, no authentication). */
  NO_ACCEPTABLE_METHOD: "AMB_SOCKS_NO_ACCEPTABLE_METHOD",
  /** BIND or UDP ASSOCIATE (or garbage) instead of CONNECT. */
  COMMAND_NOT_SUPPORTED: "AMB_SOCKS_COMMAND_NOT_SUPPORTED",
  ADDRESS_TYPE_NOT_SUPPORTED: "AMB_SOCKS_ADDRESS_TYPE_NOT_SUPPORTED",
} as const;

/** The waypoint's request and opaque-TCP path. */
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
  /** A tunnel to a destination this waypoint does not serve (not bound to it by xDS). */
  NOT_SERVED: "AMB_WAYPOINT_NOT_SERVED",
  /** Upstream connect failed or timed out (connectionPool.tcp.connectTimeout). */
  UPSTREAM_CONNECT: "AMB_WAYPOINT_UPSTREAM_CONNECT",
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

/** The waypoint's cluster stage (DestinationRule, endpoints). */
export const ClusterErrorCode = {
  /** A circuit breaker refused the request (Envoy `UO`). */
  OVERFLOW: "AMB_UPSTREAM_OVERFLOW",
  /** No endpoint left after health, ejection and panic rules (Envoy `UH`). */
  NO_HEALTHY_UPSTREAM: "AMB_NO_HEALTHY_UPSTREAM",
  /** The route names a subset no DestinationRule defines (Envoy `NC`: the cluster does not exist). */
  CLUSTER_NOT_FOUND: "AMB_CLUSTER_NOT_FOUND",
  /** Neither a service nor a workload answers to the destination (Envoy `NR`). */
  UNKNOWN_DESTINATION: "AMB_UNKNOWN_DESTINATION",
  /**
   * A Gateway API backendRef that resolves to nothing (no such Service, another kind, another
   * namespace): its share of the route's requests answers 500, as the Gateway API requires.
   */
  INVALID_BACKEND: "AMB_INVALID_BACKEND",
} as const;

/** Node's and the OS's own codes that reach the data path, as the classifier reads them. */
export const SystemErrorCode = {
  ECONNREFUSED: "ECONNREFUSED",
  ECONNRESET: "ECONNRESET",
  EPIPE: "EPIPE",
  ETIMEDOUT: "ETIMEDOUT",
  EHOSTUNREACH: "EHOSTUNREACH",
  EHOSTDOWN: "EHOSTDOWN",
  ENETUNREACH: "ENETUNREACH",
  ENETDOWN: "ENETDOWN",
  ENOTFOUND: "ENOTFOUND",
  EAI_AGAIN: "EAI_AGAIN",
  EADDRNOTAVAIL: "EADDRNOTAVAIL",
  ERR_STREAM_PREMATURE_CLOSE: "ERR_STREAM_PREMATURE_CLOSE",
  ERR_HTTP2_STREAM_CANCEL: "ERR_HTTP2_STREAM_CANCEL",
  ERR_HTTP2_STREAM_ERROR: "ERR_HTTP2_STREAM_ERROR",
  ERR_HTTP2_SESSION_ERROR: "ERR_HTTP2_SESSION_ERROR",
  ERR_HTTP2_GOAWAY_SESSION: "ERR_HTTP2_GOAWAY_SESSION",
  ERR_HTTP2_INVALID_SESSION: "ERR_HTTP2_INVALID_SESSION",
} as const;

/** Every data-path code, for the classifier's table test. */
export const DATA_PATH_CODES: readonly string[] = [
  HboneErrorCode,
  ProxyErrorCode,
  Socks5ErrorCode,
  WaypointErrorCode,
  ClusterErrorCode,
  SystemErrorCode,
].flatMap((group) => Object.values(group));
