// @ambient/ctl: the ambientctl command line.
export { run } from "./cli.js";
export { type EchoIdentity, EchoServer } from "./local/echo-server.js";
export { LocalMesh, type LocalMeshOptions, type PodSummary } from "./local/mesh.js";
export {
  type HttpResult,
  httpGetViaSocks,
  httpViaSocks,
  parseHttp,
  SocksError,
  socksConnect,
} from "./local/socks-client.js";
/** The network-namespace harness (root only): topology, CNI runtime, pods, spawn. */
export * as netns from "./netns/index.js";
export { NetnsMesh, type NetnsMeshOptions, type NetnsNode, type NetnsPod } from "./netns/mesh.js";
export { fetchMeshView, type MeshView } from "./xds-view.js";
