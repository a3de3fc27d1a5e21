// The network-namespace harness: machines (topology), pod sandboxes wired by CNI (pods, CNI
// runtime, node conflist), programs inside namespaces (spawn), and the API-server view of the
// manifests (manifests). Shared by test/netns and `ambientctl up --netns`; root only.

export {
  type CniResult,
  CniRuntime,
  type CniRuntimeOptions,
  firstIpv4,
  k8sArgs,
  type NetworkConfigList,
  type PluginConf,
  type RuntimeConf,
} from "./cni-runtime.js";
export {
  ECHO_READY_MESSAGE,
  type EchoAppArgs,
  echoCommand,
  echoMainPath,
  parseEchoArgs,
} from "./echo-app.js";
export { NetnsErrorCode } from "./errors.js";
export { type CommandFailure, commandFailure, type RunOptions, type RunResult, run } from "./exec.js";
export { listGenerated, NetnsManifests, type NetnsManifestsOptions } from "./manifests.js";
export {
  type PlannedPod,
  type PodPlan,
  type PodRuntimeState,
  planPods,
  rewriteObject,
  type SkippedPod,
  serviceHostsEntries,
  VipAllocator,
} from "./manifests-rewrite.js";
export {
  DEFAULT_PREFIX,
  ETC_NETNS_DIR,
  NETNS_RUN_DIR,
  netnsPath,
  nodeNetnsName,
  podNetnsName,
  switchNetnsName,
} from "./names.js";
export {
  loadNodeNetwork,
  NODE_CONFLIST_FILE,
  type NodeNetwork,
  nodeConflist,
  POD_BRIDGE,
  POD_NETWORK_NAME,
  parseNetworkConfig,
  writeNodeConflist,
} from "./node-conflist.js";
export {
  checkPod,
  cniRuntimeFor,
  createPodNetns,
  deletePod,
  type HostsEntry,
  type PodCniOptions,
  type PodNetns,
  type PodRef,
  removeHostsFile,
  writeHostsFile,
} from "./pods.js";
export { type ExitInfo, type NetnsProcess, type SpawnInNetnsOptions, spawnInNetns } from "./spawn.js";
export {
  cleanupStale,
  createTopology,
  defaultStateDir,
  listNetns,
  SYSTEM_CNI_BIN_DIR,
  Topology,
  type TopologyNode,
  type TopologyOptions,
} from "./topology.js";
