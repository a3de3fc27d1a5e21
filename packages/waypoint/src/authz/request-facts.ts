// The attributes of one request that policies match on, derived once per request: the normalized
// path, the peer identity, the three IPs (source, original client, destination) and the JWT claims.
// Where an attribute comes from follows what Envoy exposes to RBAC inside an Istio waypoint.

import { parsePeerIp } from "@ambient/core";
import type { L7Request } from "../model/request.js";
import { normalizePath, type PathNormalization, splitPathAndQuery } from "./path.js";

/** What RequestAuthentication established for this request. */
export interface RequestAuth {
  /** `<iss>/<sub>` of the verified JWT. */
  requestPrincipal?: string;
  /** The verified JWT payload (space-delimited claims such as `scope` already split into lists). */
  claims?: Record<string, unknown>;
}

export interface FactsOptions {
  pathNormalization: PathNormalization;
  /** meshConfig.defaultConfig.gatewayTopology.numTrustedProxies (Envoy xff_num_trusted_hops). */
  numTrustedProxies: number;
}

export interface RequestFacts {
  readonly req: L7Request;
  /** Normalized path without query: what `paths` match (Envoy's url_path matcher). */
  readonly path: string;
  /** Normalized path with query: the `:path` header. */
  readonly target: string;
  /** The peer's SPIFFE ID with its `spiffe://` scheme, as Envoy's principal_name. */
  readonly peer: string | undefined;
  readonly sourceIp: Uint8Array | undefined;
  readonly remoteIp: Uint8Array | undefined;
  readonly destinationIp: Uint8Array | undefined;
  readonly claims: Record<string, unknown> | undefined;
  readonly issuer: string | undefined;
  readonly subject: string | undefined;
}

const SPIFFE = "spiffe://";

/**
 * The original client address. The waypoint's HTTP connection manager runs with
 * use_remote_address=false (as istiod configures waypoints), so Envoy trusts X-Forwarded-For: the
 * client is its (numTrustedProxies+1)-th entry from the right, or the peer address when XFF is
 * absent, too short or unparsable there.
 */
export function originalClientIp(req: L7Request, numTrustedProxies: number): Uint8Array | undefined {
  const source = parsePeerIp(req.source.ip);
  const xff = req.headers["x-forwarded-for"];
  if (!xff) return source;
  const hops = xff
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const index = hops.length - 1 - numTrustedProxies;
  if (index < 0) return source;
  return parsePeerIp(hops[index]!) ?? source;
}

/** Undefined when the path fails normalization (Envoy rejects such a request with 400). */
export function requestFacts(
  req: L7Request,
  auth: RequestAuth | undefined,
  options: FactsOptions,
): RequestFacts | undefined {
  const target = normalizePath(req.path, options.pathNormalization);
  if (target === undefined) return undefined;
  const principal = req.source.principal;
  const peer = principal ? (principal.startsWith(SPIFFE) ? principal : SPIFFE + principal) : undefined;
  const claims = auth?.claims;
  let issuer = typeof claims?.["iss"] === "string" ? claims["iss"] : undefined;
  let subject = typeof claims?.["sub"] === "string" ? claims["sub"] : undefined;
  if (!claims && auth?.requestPrincipal) {
    // Without the payload, split "<iss>/<sub>" at the last "/" (issuers are often URLs).
    const slash = auth.requestPrincipal.lastIndexOf("/");
    issuer = slash >= 0 ? auth.requestPrincipal.slice(0, slash) : auth.requestPrincipal;
    subject = slash >= 0 ? auth.requestPrincipal.slice(slash + 1) : "";
  }
  return {
    req,
    path: splitPathAndQuery(target).path,
    target,
    peer,
    sourceIp: parsePeerIp(req.source.ip),
    remoteIp: originalClientIp(req, options.numTrustedProxies),
    destinationIp: parsePeerIp(req.destination.ip),
    claims,
    issuer,
    subject,
  };
}

/** A request header as Envoy's HeaderMatcher sees it, pseudo-headers included. */
export function headerValue(facts: RequestFacts, name: string): string | undefined {
  const lower = name.toLowerCase();
  switch (lower) {
    case ":authority":
      return facts.req.authority;
    case ":method":
      return facts.req.method;
    case ":path":
      return facts.target;
    case ":scheme":
      return facts.req.scheme;
    default:
      return facts.req.headers[lower];
  }
}

/** A (possibly nested) claim of the verified JWT. */
export function claimValue(facts: RequestFacts, path: readonly string[]): unknown {
  let cur: unknown = facts.claims;
  for (const key of path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
