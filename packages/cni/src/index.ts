// @ambient/cni: the chained CNI plugin, its node agent, and the in-pod redirection rules.
export {
  AgentError,
  type CniAddRequest,
  type CniDelRequest,
} from "./agent/agent.js";
export { type CniServer, startCniServer } from "./agent/cni-server.js";
export { ZtunnelServer } from "./agent/ztunnel-server.js";
export { installPlugin } from "./install/install.js";
