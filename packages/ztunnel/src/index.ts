// @ambient/ztunnel: the per-node L4 proxy.
export { parseZtunnelConfig, ZTUNNEL_OPTIONS, type ZtunnelConfig } from "./config.js";
export { AgentClient } from "./inpod/agent-client.js";
export { isBenign } from "./proxy/inbound.js";
export {
  type Listenable,
  LocalSocketFactory,
  type PodRef,
  type SocketFactory,
} from "./proxy/socket-factory.js";
export * from "./rbac/index.js";
// Istio's TCP metrics and access-log fields, which the waypoint reports for opaque TCP too.
export { AccessLog, type AccessLogEntry } from "./telemetry/access-log.js";
export { connectionLabels } from "./telemetry/labels.js";
export { type MeteredConnection, TcpMetrics } from "./telemetry/metrics.js";
export { READY_MESSAGE, Ztunnel, type ZtunnelDeps } from "./ztunnel.js";
