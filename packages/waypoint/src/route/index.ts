// VirtualService routing for the waypoint: compile the mesh's VirtualServices into a route table,
// then turn each L7 request into a decision (forward, redirect, direct response, 404 NR, or the
// default route) plus the helpers the proxy engine needs to carry it out.

export { compileRoutes, RouteTable } from "./compile.js";
export {
  corsPreflight,
  corsResponseHeaders,
} from "./cors.js";
export { faultApplies } from "./fault.js";
export {
  type RetryPolicy,
  shouldRetry,
} from "./retry.js";
export type { VsObject } from "./spec.js";
