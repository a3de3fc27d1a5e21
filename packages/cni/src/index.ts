// @ambient/cni: the chained CNI plugin, its node agent, and the in-pod redirection rules.
export {
  AgentError,
  type CniAddRequest,
  type CniDelRequest,
  NodeAgent,
  REDIRECTION_ANNOTATION,
  type Redirection,
} from "./agent/agent.js";
export { ANNOTATIONS_FILE, FileAnnotator, type PodAnnotator } from "./agent/annotations.js";
export { type ClusterSource, manifestsClusterSource, SourceIndex } from "./agent/cluster-source.js";
export { type CniServer, type CniServerOptions, startCniServer } from "./agent/cni-server.js";
export { type NodePod, PodRegistry } from "./agent/pod-registry.js";
export { ZtunnelServer } from "./agent/ztunnel-server.js";
export {
  type ChainResult,
  chainPlugin,
  PLUGIN_TYPE,
  type PluginEntry,
  primaryConfigFile,
  unchainPlugin,
} from "./install/conflist.js";
export { CniInstallErrorCode } from "./install/errors.js";
export {
  type InstallOptions,
  type InstallResult,
  installPlugin,
  pluginEntry,
  uninstallPlugin,
} from "./install/install.js";
export {
  applyHostProbeRules,
  applyInPodRules,
  countRules,
  IptablesError,
  IptablesErrorCode,
  IptablesRedirection,
  type IptablesRedirectionOptions,
  inPodRules,
  isNetnsGone,
  NetnsGoneError,
  PROBE_SNAT_V4,
  PROBE_SNAT_V6,
  removeHostProbeRules,
  removeInPodRules,
  saveRules,
} from "./iptables/index.js";
export { DEFAULT_AGENT_SOCKET, DEFAULT_EXCLUDE_NAMESPACES, DEFAULT_EXCLUDE_PODS } from "./plugin/config.js";
export { CniCode, SUPPORTED_VERSIONS } from "./plugin/spec.js";
