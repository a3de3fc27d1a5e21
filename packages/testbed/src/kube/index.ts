// A Kubernetes cluster on one machine: the test API server, the mesh's pods and a kubelet stand-in
// per node, on loopback or network namespaces. Shared by test/kube, test/netns and `ambientctl up --kube`.

export { KubeClient } from "./client.js";
export { KubeCluster } from "./cluster.js";
export { Kubelet } from "./kubelet.js";
export { LoopbackRuntime } from "./loopback-runtime.js";
