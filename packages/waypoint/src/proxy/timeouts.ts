// The bound on every phase of a request through the waypoint, so that no request, connection or
// upstream stream can wait forever. Each number has the values of peers beside it; the route's own
// timeout (VirtualService `timeout`, off by default as in Istio) comes on top of these.

export interface RequestBounds {
  /**
   * Downstream: how long the headers of the next request may take to arrive once a connection is
   * open or idle again (slow-header clients). Node's headersTimeout 60 s, nginx
   * client_header_timeout 60 s, HAProxy's usual `timeout http-request` 10 s, Envoy off by default.
   */
  requestHeadersMs: number;
  /**
   * No byte in either direction of one request (waiting for response headers, or a body stalled
   * either way). Envoy's stream_idle_timeout, which Istio leaves at 5 min; nginx proxy_read_timeout
   * 60 s. What bounds a request to an upstream that never answers when no route timeout is set.
   */
  streamIdleMs: number;
  /**
   * Downstream keep-alive: a connection with no request in flight closes after this. Node's
   * keepAliveTimeout 5 s, nginx keepalive_timeout 75 s, Envoy's HTTP idle_timeout 1 h. Short,
   * because our peer is ztunnel holding a tunnel per client connection, and a client that comes back
   * later opens a new one for the price of an HBONE stream.
   */
  downstreamIdleMs: number;
  /**
   * Upstream connect: TCP, TLS and the HBONE CONNECT answered. Istio's connectTimeout default 10 s
   * (Envoy's own default 5 s); a DestinationRule's tcp.connectTimeout replaces it per cluster.
   */
  connectMs: number;
}

export const DEFAULT_BOUNDS: Readonly<RequestBounds> = {
  requestHeadersMs: 60_000,
  streamIdleMs: 300_000,
  downstreamIdleMs: 5_000,
  connectMs: 10_000,
};
