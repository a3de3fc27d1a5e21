// HBONE: HTTP/2 CONNECT over mutual TLS 1.3, the tunnel between ztunnels and waypoints (DESIGN §4).
// The server hands authorized-to-decide CONNECTs to its caller; the client pool opens tunnels.
export { formatAuthority, type HboneTarget, parseAuthority } from "./authority.js";
export type {
  CreateConnection,
  HboneStream,
  HboneStreamInfo,
} from "./client.js";
export { type HboneErrorCodeValue, isHboneError } from "./errors.js";
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  HboneClientPool,
  type HboneClientPoolOptions,
  type HboneClientPoolStats,
  type HboneConnectRequest,
  type HboneSessionStats,
} from "./pool.js";
export {
  createHboneServer,
  type HboneRequest,
  type HboneServer,
  type HboneServerOptions,
  respondStatus,
} from "./server.js";
export {
  CLIENT_MAX_STREAMS_PER_SESSION,
  CONNECTION_WINDOW_BYTES,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_TIMEOUT_MS,
  type KeepaliveOptions,
  MAX_FRAME_BYTES,
  SERVER_MAX_CONCURRENT_STREAMS,
  STREAM_WINDOW_BYTES,
} from "./settings.js";
export {
  clientTlsOptions,
  peerIdentity,
  serverSecureContextOptions,
  spiffeIdFromAltNames,
} from "./tls-options.js";
