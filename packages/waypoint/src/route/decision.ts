// What routing tells the proxy engine to do with one request. The engine applies it: forward
// (with rewrites, header edits, timeouts, retries, faults, mirrors), answer locally (redirect,
// direct response, 404 NR), or fall back to the destination service when no VirtualService applies.

import type { HeaderOps } from "../model/request.js";
import type { CorsPolicy } from "./cors.js";
import type { FaultPolicy } from "./fault.js";
import type { RetryPolicy } from "./retry.js";

export interface RouteDestination {
  /** FQDN (short names resolved in the VirtualService's namespace). */
  host: string;
  subset?: string;
  /** Absent: the port the client dialled. */
  port?: number;
}

/** The VirtualService that decided, for access logs and metrics. */
export interface VsRef {
  namespace: string;
  name: string;
}

export interface RouteRewrite {
  /** The path (with query) to send upstream, after `rewrite.uri` or `uriRegexRewrite`. */
  path?: string;
  /** As configured: the replacement for the matched prefix or path. */
  uri?: string;
  /** New Host / :authority. */
  authority?: string;
  /** As configured (RE2 pattern and \N substitution). */
  uriRegexRewrite?: { match: string; rewrite: string };
}

export interface ForwardDecision {
  kind: "route";
  /** Istio's route name: `http[].name`, plus `.` and the match block's name when it has one. */
  name?: string;
  virtualService: VsRef;
  destination: RouteDestination;
  /** Index into the rule's `route` list of the destination the weighted pick chose. */
  weightIndex: number;
  rewrite?: RouteRewrite;
  /** Route-level ops followed by the chosen destination's ops, folded into one. */
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
  /** Absent = no timeout (Istio's default is off). */
  timeoutMs?: number;
  retry: RetryPolicy;
  /** Percentages to roll with `faultApplies` per request. */
  fault?: FaultPolicy;
  mirrors: { destination: RouteDestination; percentage: number }[];
  cors?: CorsPolicy;
}

export interface RedirectDecision {
  kind: "redirect";
  name?: string;
  virtualService: VsRef;
  status: number;
  location: string;
  /** Route-level response header ops still apply to a redirect, as Envoy does. */
  responseHeaders?: HeaderOps;
}

export interface DirectDecision {
  kind: "direct";
  name?: string;
  virtualService: VsRef;
  status: number;
  body?: string;
  responseHeaders?: HeaderOps;
}

/**
 * A VirtualService owns the host but none of its rules matched: 404 with response flag NR. At a
 * gateway also a host no VirtualService owns (then `virtualService` is absent).
 */
export interface NoRouteDecision {
  kind: "no-route";
  virtualService?: VsRef;
}

/** No VirtualService applies: send to the destination service itself. */
export interface DefaultDecision {
  kind: "default";
  retry: RetryPolicy;
}

export type RouteDecision =
  | ForwardDecision
  | RedirectDecision
  | DirectDecision
  | NoRouteDecision
  | DefaultDecision;
