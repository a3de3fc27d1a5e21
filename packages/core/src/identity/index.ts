// Workload identity: the SPIFFE ID type every other component passes around.
export { SpiffeId } from "./spiffe.js";
