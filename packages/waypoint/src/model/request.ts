// The request as the waypoint's L7 stages see it: protocol-independent (HTTP/1.1, h2c, gRPC,
// WebSocket upgrade), with what the mesh knows about its source. Routing, authorization and
// authentication are pure functions of this shape; the proxy engine builds it from the wire.

export type HttpProtocol = "http/1.1" | "h2" | "grpc";

export interface L7Request {
  method: string;
  /** "http" inside the mesh (HBONE carries plaintext HTTP); "https" at a gateway that terminated TLS. */
  scheme: string;
  /** At an ingress gateway, a TLS-terminated connection and the server name its client sent. */
  tls?: { serverName?: string };
  /** Host / :authority as sent, lowercased (may carry ":port"). */
  authority: string;
  /** Path with query string, as sent. */
  path: string;
  /** Lowercase header names; repeated headers joined with ", " except set-cookie. */
  headers: Record<string, string>;
  /** The service port the client dialled (the original VIP:port the HBONE :authority named). */
  port: number;
  protocol: HttpProtocol;
  source: {
    ip: string;
    /** Verified SPIFFE ID of the peer (from HBONE), e.g. spiffe://cluster.local/ns/a/sa/b. */
    principal?: string;
    namespace?: string;
  };
  /** The destination the client asked for. */
  destination: {
    /** Service hostname (`<svc>.<ns>.svc.cluster.local`) or, for workload-addressed traffic, the pod IP. */
    host: string;
    namespace?: string;
    ip: string;
    port: number;
  };
}

/** A header edit, as VirtualService `headers.request|response.{set,add,remove}` expresses it. */
export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}
