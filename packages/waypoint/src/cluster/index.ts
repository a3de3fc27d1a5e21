// The DestinationRule side of the waypoint: per-cluster policy, endpoint picking, circuit breakers
// and outlier detection. Pure state machines driven by the proxy engine; no sockets, no timers.
export * from "./circuit-breaker.js";
export * from "./destination-rule.js";
export * from "./endpoint.js";
export * from "./errors.js";
export * from "./hash-ring.js";
export * from "./load-balancer.js";
export * from "./outlier.js";
export * from "./policy.js";
