// @ambient/kube: the Kubernetes object model every component shares — the kinds we accept and their
// keys, the ambient enrolment rule, structural validation, and the ObjectSource interface that the
// manifests folder (`@ambient/kube/manifests`) and the Kubernetes API implement. Nothing here
// loads gRPC, YAML parsers or file watchers.
export { isAmbientEnrolled } from "./enrolment.js";
export * from "./model/index.js";
export type { ObjectSource, SourceProblem } from "./source.js";
export * from "./validate/index.js";
