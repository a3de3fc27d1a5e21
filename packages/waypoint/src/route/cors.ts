// CORS as Envoy's cors filter applies a VirtualService corsPolicy: answer preflights at the
// waypoint when the Origin is allowed, and decorate actual responses for allowed origins only.
// A disallowed origin gets no CORS headers; its preflight is forwarded unless told to ignore it.

import type { L7Request } from "../model/request.js";
import { parseGoDuration } from "./duration.js";
import { type CompiledStringMatch, compileStringMatch, stringMatches } from "./match.js";
import type { ConfigProblems, CorsPolicySpec } from "./spec.js";

export interface CorsPolicy {
  allowOrigins: CompiledStringMatch[];
  /** Serialised as Istio does: joined with "," and sent verbatim ("*" echoes the request). */
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  /** Whole seconds, as a header value. */
  maxAge?: string;
  allowCredentials: boolean;
  allowPrivateNetwork: boolean;
  /** Istio's `unmatchedPreflights`: FORWARD (default) lets the upstream answer them. */
  forwardNotMatchingPreflights: boolean;
}

export function compileCorsPolicy(
  spec: CorsPolicySpec,
  where: { object: string; path: string; problems: ConfigProblems },
): CorsPolicy {
  const allowOrigins: CompiledStringMatch[] = [];
  if (spec.allowOrigins !== undefined) {
    spec.allowOrigins.forEach((sm, i) => {
      const m = compileStringMatch(sm, { ...where, path: `${where.path}.allowOrigins[${i}]` });
      if (m) allowOrigins.push(m);
    });
  } else {
    for (const origin of spec.allowOrigin ?? []) allowOrigins.push({ kind: "exact", value: origin });
  }

  const policy: CorsPolicy = {
    allowOrigins,
    allowCredentials: spec.allowCredentials === true,
    allowPrivateNetwork: spec.allowPrivateNetwork === true,
    forwardNotMatchingPreflights: spec.unmatchedPreflights !== "IGNORE",
  };
  if (spec.allowMethods?.length) policy.allowMethods = spec.allowMethods.join(",");
  if (spec.allowHeaders?.length) policy.allowHeaders = spec.allowHeaders.join(",");
  if (spec.exposeHeaders?.length) policy.exposeHeaders = spec.exposeHeaders.join(",");
  if (spec.maxAge !== undefined) {
    const ms = parseGoDuration(spec.maxAge);
    if (ms === undefined) where.problems.add(where.object, `${where.path}.maxAge`, "not a duration");
    else policy.maxAge = String(Math.floor(ms / 1000));
  }
  return policy;
}

/** Envoy also accepts any matcher that matches the literal "*" as "every origin". */
export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  return policy.allowOrigins.some((m) => stringMatches(m, "*") || stringMatches(m, origin));
}

function originOf(req: L7Request): string | undefined {
  const origin = req.headers["origin"];
  return origin === undefined || origin === "" ? undefined : origin;
}

/**
 * The waypoint's own answer to a CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method), or undefined when the request should go on upstream: not a
 * preflight, or an origin that does not match while unmatched preflights are forwarded.
 */
export function corsPreflight(
  policy: CorsPolicy,
  req: L7Request,
): { status: 200; headers: Record<string, string> } | undefined {
  const origin = originOf(req);
  if (origin === undefined || req.method !== "OPTIONS") return undefined;
  const requestMethod = req.headers["access-control-request-method"];
  if (requestMethod === undefined || requestMethod === "") return undefined;

  const allowed = originAllowed(policy, origin);
  if (!allowed && policy.forwardNotMatchingPreflights) return undefined;

  const headers: Record<string, string> = {};
  if (allowed) headers["access-control-allow-origin"] = origin;
  if (policy.allowCredentials) headers["access-control-allow-credentials"] = "true";
  if (policy.allowMethods !== undefined) {
    headers["access-control-allow-methods"] =
      policy.allowMethods === "*" ? requestMethod : policy.allowMethods;
  }
  if (policy.allowHeaders !== undefined) {
    headers["access-control-allow-headers"] =
      policy.allowHeaders === "*"
        ? (req.headers["access-control-request-headers"] ?? "")
        : policy.allowHeaders;
  }
  if (policy.maxAge !== undefined) headers["access-control-max-age"] = policy.maxAge;
  if (policy.allowPrivateNetwork && req.headers["access-control-request-private-network"] === "true") {
    headers["access-control-allow-private-network"] = "true";
  }
  return { status: 200, headers };
}

/** Headers to add to the upstream's response to an actual (non-preflight) CORS request. */
export function corsResponseHeaders(policy: CorsPolicy, req: L7Request): Record<string, string> {
  const origin = originOf(req);
  if (origin === undefined || !originAllowed(policy, origin)) return {};
  const headers: Record<string, string> = { "access-control-allow-origin": origin };
  if (policy.allowCredentials) headers["access-control-allow-credentials"] = "true";
  if (policy.exposeHeaders !== undefined) headers["access-control-expose-headers"] = policy.exposeHeaders;
  return headers;
}
