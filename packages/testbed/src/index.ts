// @ambient/testbed: whole meshes on one machine, for the tests and for `ambientctl up`. Not shipped
// to clusters. LocalMesh runs every component in one process on loopback addresses; NetnsMesh runs
// the real binaries in network namespaces with CNI-driven capture (root only).

/** The test Kubernetes API server: HTTPS, kubeconfig, discovery, CRUD/watch, SSA, tokens, faults. */
export * as apiserver from "./apiserver/index.js";
export {
  istioCrds,
  startTestApiServer,
  type TestApiServer,
} from "./apiserver/index.js";
export { binaryPath, nodeArgv } from "./binaries.js";
/** A cluster on one machine: the test API server, the mesh's pods, a kubelet stand-in per node. */
export * as kube from "./kube/index.js";
export { LocalMesh, type LocalMeshOptions } from "./local/mesh.js";
export {
  httpGetViaSocks,
  httpViaSocks,
  SocksError,
  socksConnect,
} from "./local/socks-client.js";
/** The network-namespace harness (root only): topology, CNI runtime, pods, spawn. */
export * as netns from "./netns/index.js";
export { NetnsMesh, type NetnsNode } from "./netns/mesh.js";
