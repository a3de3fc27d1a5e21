// VirtualService routing for the waypoint: compile the mesh's VirtualServices into a route table,
// then turn each L7 request into a decision (forward, redirect, direct response, 404 NR, or the
// default route) plus the helpers the proxy engine needs to carry it out.

export { type CompileOptions, compileRoutes, RouteTable } from "./compile.js";
export {
  type CorsPolicy,
  compileCorsPolicy,
  corsPreflight,
  corsResponseHeaders,
  originAllowed,
} from "./cors.js";
export type {
  DefaultDecision,
  DirectDecision,
  ForwardDecision,
  NoRouteDecision,
  RedirectDecision,
  RouteDecision,
  RouteDestination,
  RouteRewrite,
  VsRef,
} from "./decision.js";
export { parseGoDuration } from "./duration.js";
export { type FaultPolicy, faultApplies, mirrorPercentage } from "./fault.js";
export { applyHeaderOps, mergeHeaderOps } from "./headers.js";
export {
  DEFAULT_CLUSTER_DOMAIN,
  defaultHostResolver,
  type HostResolver,
  hostMatches,
  resolveHost,
} from "./hosts.js";
export { type CompiledStringMatch, parseQuery, stringMatches } from "./match.js";
export {
  compileRetryPolicy,
  DEFAULT_RETRY_ON,
  defaultRetryPolicy,
  parseRetryOn,
  type RetryOutcome,
  type RetryPolicy,
  shouldRetry,
} from "./retry.js";
export { type CompiledRedirect, redirectLocation, rewritePrefix, rewriteRegex } from "./rewrite.js";
export type {
  CorsPolicySpec,
  Destination,
  HeaderOperations,
  HeadersSpec,
  HttpDirectResponse,
  HttpFaultInjection,
  HttpMatchRequest,
  HttpMirrorPolicy,
  HttpRedirect,
  HttpRetry,
  HttpRewrite,
  HttpRoute,
  HttpRouteDestination,
  Percent,
  StringMatch,
  VirtualServiceSpec,
  VsObject,
} from "./spec.js";
