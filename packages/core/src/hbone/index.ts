// HBONE: HTTP/2 CONNECT over mutual TLS 1.3, the tunnel between ztunnels and waypoints (DESIGN §4).
// The server hands authorized-to-decide CONNECTs to its caller; the client pool opens tunnels.
export { HboneClientPool } from "./pool.js";
export {
  createHboneServer,
  type HboneRequest,
  type HboneServer,
  respondStatus,
} from "./server.js";
export { clientTlsOptions } from "./tls-options.js";
