// @ambient/ztunnel: the per-node L4 proxy.

// Shared with the waypoint, which consumes the same xDS and keeps its own certificate.
export { createAdminServer, createMetricsServer, createReadinessServer } from "./admin/admin.js";
export { parseZtunnelConfig, ZTUNNEL_OPTIONS, type ZtunnelConfig } from "./config.js";
export { CertificateManager, type CertificateManagerOptions } from "./identity/index.js";
export { AgentClient } from "./inpod/agent-client.js";
export { copyBidirectional } from "./proxy/copy.js";
export { ipText } from "./proxy/resolve.js";
export {
  type Listenable,
  LocalSocketFactory,
  type PodRef,
  type SocketFactory,
} from "./proxy/socket-factory.js";
export * from "./rbac/index.js";
export { canonicalIp, ProxyState, workloadIdentity } from "./state/index.js";
export { proxyStateHandlers, ztunnelNode } from "./xds/index.js";
export { READY_MESSAGE, readToken, Ztunnel, type ZtunnelDeps } from "./ztunnel.js";
