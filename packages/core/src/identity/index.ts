// Workload identity: the SPIFFE ID type every other component passes around.
export { parseTrustDomain, SpiffeId, type SpiffeIdParts } from "./spiffe.js";
