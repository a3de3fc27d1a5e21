// One `http[]` rule of a VirtualService: compiled once into matchers, destinations with their
// folded header ops, and policies; then, per request, turned into a decision — weighted pick,
// rewrite, redirect Location or direct response.

import type { HeaderOps, L7Request } from "../model/request.js";
import { type CorsPolicy, compileCorsPolicy } from "./cors.js";
import type { RouteDecision, RouteDestination, RouteRewrite, VsRef } from "./decision.js";
import { parseGoDuration } from "./duration.js";
import { compileFault, type FaultPolicy, mirrorPercentage } from "./fault.js";
import { compileHeaderOps, isEmptyHeaderOps, mergeHeaderOps } from "./headers.js";
import { type HostResolver, resolveHost } from "./hosts.js";
import { type CompiledMatch, compileMatch } from "./match.js";
import { compileRetryPolicy, type RetryPolicy } from "./retry.js";
import {
  type CompiledRedirect,
  type CompiledRegexRewrite,
  compileRegexRewrite,
  REDIRECT_CODES,
  redirectLocation,
  rewritePrefix,
  rewriteRegex,
} from "./rewrite.js";
import type { ConfigProblems, Destination, HttpRoute } from "./spec.js";

export interface CompiledDestination {
  destination: RouteDestination;
  weight: number;
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
  authority?: string;
}

type RuleAction =
  | { kind: "forward"; destinations: CompiledDestination[]; totalWeight: number }
  | { kind: "redirect"; redirect: CompiledRedirect }
  | { kind: "direct"; status: number; body?: string };

export interface CompiledRule {
  name?: string;
  /** Undefined: the rule has no `match` and takes every request. */
  matches?: CompiledMatch[];
  action: RuleAction;
  rewriteUri?: string;
  regexRewrite?: CompiledRegexRewrite & { match: string };
  responseHeaders: HeaderOps;
  timeoutMs?: number;
  retry: RetryPolicy;
  fault?: FaultPolicy;
  mirrors: { destination: RouteDestination; percentage: number }[];
  cors?: CorsPolicy;
}

export interface RuleContext {
  vs: VsRef;
  /** `namespace/name` for problem reports. */
  object: string;
  path: string;
  resolver: HostResolver;
  problems: ConfigProblems;
}

/** Undefined for rules with nothing to do here (a `delegate`, which this waypoint does not follow). */
export function compileRule(spec: HttpRoute, ctx: RuleContext): CompiledRule | undefined {
  const where = (field: string) => ({
    object: ctx.object,
    path: `${ctx.path}.${field}`,
    problems: ctx.problems,
  });
  const action = compileAction(spec, ctx);
  if (!action) return undefined;

  const rule: CompiledRule = {
    action,
    responseHeaders: compileHeaderOps(spec.headers?.response).ops,
    retry: compileRetryPolicy(spec.retries, where("retries")),
    mirrors: compileMirrors(spec, ctx),
  };
  if (spec.name) rule.name = spec.name;
  if (spec.match && spec.match.length > 0) {
    rule.matches = spec.match.map((m, i) => compileMatch(m ?? {}, where(`match[${i}]`)));
  }
  const regex = spec.rewrite?.uriRegexRewrite;
  if (regex?.match !== undefined) {
    try {
      rule.regexRewrite = { ...compileRegexRewrite(regex.match, regex.rewrite ?? ""), match: regex.match };
    } catch (err) {
      ctx.problems.add(ctx.object, `${ctx.path}.rewrite.uriRegexRewrite.match`, (err as Error).message);
    }
  } else if (spec.rewrite?.uri) {
    rule.rewriteUri = spec.rewrite.uri;
  }
  if (spec.timeout !== undefined) {
    const ms = parseGoDuration(spec.timeout);
    if (ms === undefined) ctx.problems.add(ctx.object, `${ctx.path}.timeout`, "not a duration");
    // Envoy reads a zero timeout as "none", like an absent one.
    else if (ms > 0) rule.timeoutMs = ms;
  }
  const fault = compileFault(spec.fault, where("fault"));
  if (fault) rule.fault = fault;
  if (spec.corsPolicy) rule.cors = compileCorsPolicy(spec.corsPolicy, where("corsPolicy"));
  return rule;
}

function compileAction(spec: HttpRoute, ctx: RuleContext): RuleAction | undefined {
  if (spec.redirect) {
    const r = spec.redirect;
    const status = r.redirectCode === undefined || r.redirectCode === 0 ? 301 : r.redirectCode;
    if (!REDIRECT_CODES.has(status)) {
      ctx.problems.add(
        ctx.object,
        `${ctx.path}.redirect.redirectCode`,
        `${status} is not one of 301, 302, 303, 307, 308`,
      );
      return undefined;
    }
    const redirect: CompiledRedirect = { status };
    if (r.uri) redirect.uri = r.uri;
    if (r.authority) redirect.authority = r.authority;
    if (r.scheme) redirect.scheme = r.scheme;
    if (typeof r.port === "number" && r.port > 0) redirect.port = r.port;
    else if (r.derivePort === "FROM_REQUEST_PORT") redirect.port = "request";
    return { kind: "redirect", redirect };
  }
  if (spec.directResponse) {
    const d = spec.directResponse;
    const body =
      d.body?.string ??
      (d.body?.bytes !== undefined ? Buffer.from(d.body.bytes, "base64").toString("utf8") : undefined);
    return body === undefined
      ? { kind: "direct", status: d.status }
      : { kind: "direct", status: d.status, body };
  }
  if (!spec.route || spec.route.length === 0) return undefined;

  const routeOps = compileHeaderOps(spec.headers?.request);
  const routeResponse = compileHeaderOps(spec.headers?.response).ops;
  // rewrite.authority beats a `host` header op (Istio's order), and both beat the destination's.
  const routeAuthority = spec.rewrite?.authority || routeOps.authority;
  const allUnweighted = spec.route.every((d) => d.weight === undefined || d.weight === null);
  const destinations = spec.route.map((d): CompiledDestination => {
    const destOps = compileHeaderOps(d.headers?.request);
    const out: CompiledDestination = {
      destination: compileDestination(d.destination, ctx),
      // One destination takes everything; several without weights split evenly; otherwise an
      // absent weight is 0 and, like Istio's zero-weight clusters, never picked.
      weight: spec.route!.length === 1 || allUnweighted ? 1 : Math.max(0, d.weight ?? 0),
      requestHeaders: mergeHeaderOps(routeOps.ops, destOps.ops),
      responseHeaders: mergeHeaderOps(routeResponse, compileHeaderOps(d.headers?.response).ops),
    };
    const authority = routeAuthority || destOps.authority;
    if (authority) out.authority = authority;
    return out;
  });
  let totalWeight = destinations.reduce((sum, d) => sum + d.weight, 0);
  if (totalWeight === 0) {
    // Validation rejects this; split evenly rather than blackhole if it ever gets through.
    for (const d of destinations) d.weight = 1;
    totalWeight = destinations.length;
  }
  return { kind: "forward", destinations, totalWeight };
}

function compileDestination(d: Destination, ctx: RuleContext): RouteDestination {
  const out: RouteDestination = { host: resolveHost(d.host, ctx.vs.namespace, ctx.resolver) };
  if (d.subset) out.subset = d.subset;
  if (typeof d.port?.number === "number" && d.port.number > 0) out.port = d.port.number;
  return out;
}

function compileMirrors(
  spec: HttpRoute,
  ctx: RuleContext,
): { destination: RouteDestination; percentage: number }[] {
  const out: { destination: RouteDestination; percentage: number }[] = [];
  if (spec.mirror) {
    const percentage = mirrorPercentage(spec.mirrorPercentage, spec.mirrorPercent);
    if (percentage !== undefined) out.push({ destination: compileDestination(spec.mirror, ctx), percentage });
  }
  for (const m of spec.mirrors ?? []) {
    const percentage = mirrorPercentage(m.percentage);
    if (m.destination && percentage !== undefined) {
      out.push({ destination: compileDestination(m.destination, ctx), percentage });
    }
  }
  return out;
}

/** Istio's route name: the rule's name, then "." and the match block's name if it has one. */
function routeName(rule: CompiledRule, match: CompiledMatch | undefined): string | undefined {
  if (match?.name) return `${rule.name ?? ""}.${match.name}`;
  return rule.name;
}

/** `w / sum(w)` with `random()` in [0, 1); returns the index into the rule's `route` list. */
function pickWeighted(
  destinations: CompiledDestination[],
  totalWeight: number,
  random: () => number,
): number {
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON) * totalWeight;
  let cumulative = 0;
  let lastPositive = 0;
  for (let i = 0; i < destinations.length; i++) {
    const weight = destinations[i]!.weight;
    if (weight <= 0) continue;
    cumulative += weight;
    lastPositive = i;
    if (r < cumulative) return i;
  }
  return lastPositive;
}

export function decide(
  rule: CompiledRule,
  match: CompiledMatch | undefined,
  vs: VsRef,
  req: L7Request,
  random: () => number,
): RouteDecision {
  const name = routeName(rule, match);
  const named = name === undefined ? {} : { name };
  const responseHeaders = isEmptyHeaderOps(rule.responseHeaders)
    ? {}
    : { responseHeaders: rule.responseHeaders };
  const action = rule.action;

  if (action.kind === "redirect") {
    const location = redirectLocation(action.redirect, req);
    return {
      kind: "redirect",
      ...named,
      virtualService: vs,
      status: action.redirect.status,
      location,
      ...responseHeaders,
    };
  }
  if (action.kind === "direct") {
    const body = action.body === undefined ? {} : { body: action.body };
    return {
      kind: "direct",
      ...named,
      virtualService: vs,
      status: action.status,
      ...body,
      ...responseHeaders,
    };
  }

  const weightIndex =
    action.destinations.length === 1 ? 0 : pickWeighted(action.destinations, action.totalWeight, random);
  const chosen = action.destinations[weightIndex]!;
  const decision: RouteDecision = {
    kind: "route",
    ...named,
    virtualService: vs,
    destination: chosen.destination,
    weightIndex,
    requestHeaders: chosen.requestHeaders,
    responseHeaders: chosen.responseHeaders,
    retry: rule.retry,
    mirrors: rule.mirrors,
  };
  const rewrite = buildRewrite(rule, match, chosen, req);
  if (rewrite) decision.rewrite = rewrite;
  if (rule.timeoutMs !== undefined) decision.timeoutMs = rule.timeoutMs;
  if (rule.fault) decision.fault = rule.fault;
  if (rule.cors) decision.cors = rule.cors;
  return decision;
}

function buildRewrite(
  rule: CompiledRule,
  match: CompiledMatch | undefined,
  chosen: CompiledDestination,
  req: L7Request,
): RouteRewrite | undefined {
  const out: RouteRewrite = {};
  if (rule.regexRewrite) {
    out.path = rewriteRegex(req.path, rule.regexRewrite);
    out.uriRegexRewrite = { match: rule.regexRewrite.match, rewrite: rule.regexRewrite.substitution };
  } else if (rule.rewriteUri !== undefined) {
    out.path = rewritePrefix(req.path, match?.uri, rule.rewriteUri);
    out.uri = rule.rewriteUri;
  }
  if (chosen.authority) out.authority = chosen.authority;
  return Object.keys(out).length > 0 ? out : undefined;
}
