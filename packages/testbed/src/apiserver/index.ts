// The test Kubernetes API server (tests and `ambientctl up --kube`, never shipped to clusters):
// what the real kubectl, helm and @kubernetes/client-node need, with faults to inject.
export { ApiErrorCode, type Status, toStatus } from "./errors.js";
export type { Faults, RequestMatch } from "./faults.js";
export { istioCrds } from "./istio-crds.js";
export type { LogOptions, PodBackends } from "./pod-backends.js";
export type { RequestRecord } from "./router.js";
export { startTestApiServer, type TestApiServer, type TestApiServerOptions } from "./server.js";
export type { KubeObject, ObjectMeta } from "./store.js";
export { API_AUDIENCE } from "./tokens.js";
