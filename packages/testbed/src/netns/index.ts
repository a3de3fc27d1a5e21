// The network-namespace harness: machines (topology), pod sandboxes wired by CNI (pods, CNI
// runtime, node conflist), programs inside namespaces (spawn), and the API-server view of the
// manifests (manifests). Shared by test/netns and `ambientctl up --netns`; root only.

export { k8sArgs } from "./cni-runtime.js";
export { run } from "./exec.js";
export {
  DEFAULT_PREFIX,
  ETC_NETNS_DIR,
} from "./names.js";
export { loadNodeNetwork } from "./node-conflist.js";
export {
  cniRuntimeFor,
  createPodNetns,
} from "./pods.js";
export { spawnInNetns } from "./spawn.js";
export {
  listNetns,
  SYSTEM_CNI_BIN_DIR,
} from "./topology.js";
