// @ambient/ztunnel: the per-node L4 proxy.
export { parseZtunnelConfig } from "./config.js";
export { AgentClient } from "./inpod/agent-client.js";
export {
  type Listenable,
  LocalSocketFactory,
  type PodRef,
  type SocketFactory,
} from "./proxy/socket-factory.js";
export * from "./rbac/index.js";
export { READY_MESSAGE, Ztunnel, type ZtunnelDeps } from "./ztunnel.js";
