// The control plane's object model: the Kubernetes kinds it understands, their identities, and
// the address parsing both validation and translation need.

export * from "./kinds.js";
export * from "./objects.js";
