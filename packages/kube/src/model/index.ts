// The Kubernetes kinds we understand (Istio's and Gateway API's included) and their identities.

export * from "./kinds.js";
export * from "./label-selector.js";
export * from "./objects.js";
