// @ambient/cni: the chained CNI plugin, its node agent, and the in-pod redirection rules.
export {
  AgentError,
  type CniAddRequest,
  type CniDelRequest,
  type Redirection,
} from "./agent/agent.js";
export { REDIRECTION_ANNOTATION } from "./agent/annotations.js";
export { type CniServer, startCniServer } from "./agent/cni-server.js";
export { parseAgentConfig } from "./agent/config.js";
export type { NodePod } from "./agent/pod-registry.js";
export { runNodeAgent } from "./agent/run.js";
export { ZtunnelServer } from "./agent/ztunnel-server.js";
export { installPlugin } from "./install/install.js";
