// The test Kubernetes API server (tests and `ambientctl up --kube`, never shipped to clusters):
// what the real kubectl, helm and @kubernetes/client-node need, with faults to inject.
export { createPki } from "./certs.js";
export { istioCrds } from "./istio-crds.js";
export { startTestApiServer, type TestApiServer } from "./server.js";
