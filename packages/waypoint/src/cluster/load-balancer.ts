// Picks the endpoint for one request the way Envoy's cluster load balancers do: which endpoints are
// eligible (ready, not ejected, or all ready ones in panic mode), then LEAST_REQUEST, ROUND_ROBIN,
// RANDOM, PASSTHROUGH or a consistent hash on a header, cookie, source IP or query parameter.

import type { EndpointInfo } from "./endpoint.js";
import { endpointKey, HashRing, hash32, hash64Hex } from "./hash-ring.js";
import type { HashKey, LbPolicy } from "./policy.js";

export interface PickContext {
  /** Lowercase header names, as in L7Request. */
  headers?: Record<string, string>;
  /** Path with query string, as sent. */
  path?: string;
  sourceIp?: string;
  /** With sourceIp, what Envoy derives a generated hash cookie from. */
  sourcePort?: number;
  /** PASSTHROUGH: the address the client originally asked for. */
  originalDestination?: { address: string; port?: number };
}

export interface PickState {
  /** In-flight requests per endpoint uid (LEAST_REQUEST). */
  activeRequests?(uid: string): number;
  /** Outlier ejection, usually `OutlierDetector.isEjected`. */
  isEjected?(uid: string): boolean;
}

export interface PickResult {
  endpoint: EndpointInfo;
  /** A `Set-Cookie` value for the response: the hash cookie Envoy generates when it was absent. */
  setCookie?: string;
  /** Too few endpoints were healthy, so ejected ones were eligible too. */
  panic: boolean;
}

export interface Balancer {
  readonly policy: LbPolicy;
  /** Undefined when no endpoint is eligible: the engine answers 503 UH. */
  pick(endpoints: readonly EndpointInfo[], ctx?: PickContext, state?: PickState): PickResult | undefined;
}

export interface BalancerOptions {
  /** Uniform in [0, 1); Math.random by default. */
  random?: () => number;
}

// Envoy's least_request choice_count; with this many endpoints or fewer it scans them all.
const LEAST_REQUEST_CHOICES = 2;
// Rings for the last few eligible sets: ejections flip between a handful of sets.
const RING_CACHE_SIZE = 4;

export function createBalancer(policy: LbPolicy, opts: BalancerOptions = {}): Balancer {
  const random = opts.random ?? Math.random;
  // Envoy starts each round-robin sequence at a random offset so that proxies do not move in step.
  let rrIndex = Math.floor(random() * 0x7fffffff);
  const rings = new Map<string, HashRing>();

  const index = (n: number) => Math.min(n - 1, Math.floor(random() * n));

  const ringFor = (hosts: EndpointInfo[]): HashRing => {
    // The uid is part of the set's identity: a new pod may reuse an old pod's IP.
    const key = hosts
      .map((e) => `${e.uid}@${endpointKey(e)}`)
      .sort()
      .join(",");
    let ring = rings.get(key);
    if (ring) {
      rings.delete(key);
    } else {
      ring = new HashRing(hosts);
      if (rings.size >= RING_CACHE_SIZE) rings.delete(rings.keys().next().value!);
    }
    rings.set(key, ring);
    return ring;
  };

  const leastRequest = (hosts: EndpointInfo[], state: PickState | undefined): EndpointInfo => {
    const active = (e: EndpointInfo) => state?.activeRequests?.(e.uid) ?? 0;
    if (hosts.length <= LEAST_REQUEST_CHOICES) {
      let best: EndpointInfo[] = [];
      let min = Number.POSITIVE_INFINITY;
      for (const e of hosts) {
        const n = active(e);
        if (n < min) [min, best] = [n, [e]];
        else if (n === min) best.push(e);
      }
      return best[index(best.length)]!;
    }
    // Power of two choices: two random samples (with replacement), the less loaded wins.
    let candidate = hosts[index(hosts.length)]!;
    for (let i = 1; i < LEAST_REQUEST_CHOICES; i++) {
      const sample = hosts[index(hosts.length)]!;
      if (active(sample) < active(candidate)) candidate = sample;
    }
    return candidate;
  };

  return {
    policy,
    pick(endpoints, ctx = {}, state) {
      const { hosts, panic } = eligible(endpoints, state, policy.panicThresholdPercent);
      if (hosts.length === 0) return undefined;
      switch (policy.type) {
        case "LEAST_REQUEST":
          return { endpoint: leastRequest(hosts, state), panic };
        case "ROUND_ROBIN": {
          const endpoint = hosts[rrIndex % hosts.length]!;
          rrIndex = (rrIndex + 1) % Number.MAX_SAFE_INTEGER;
          return { endpoint, panic };
        }
        case "RANDOM":
          return { endpoint: hosts[index(hosts.length)]!, panic };
        case "PASSTHROUGH":
          return { endpoint: passthrough(hosts, ctx), panic };
        case "CONSISTENT_HASH": {
          const { hash, setCookie } = requestHash(policy.hashKey, ctx);
          // No key in the request: Envoy hashes a random number, i.e. picks at random.
          const h = hash ?? Math.floor(random() * 0x1_0000_0000);
          const owner = ringFor(hosts).lookup(h)!;
          // A cached ring may hold an older copy of the endpoint; answer with the caller's.
          const endpoint = hosts.find((e) => e.uid === owner.uid) ?? owner;
          return setCookie ? { endpoint, setCookie, panic } : { endpoint, panic };
        }
      }
    },
  };
}

/**
 * Envoy's host selection: only ready endpoints exist for the balancer (Istio omits unready pods);
 * ejected ones are skipped unless the non-ejected share drops below the panic threshold, in which
 * case all ready endpoints are used. A threshold of 0 never panics.
 */
export function eligible(
  endpoints: readonly EndpointInfo[],
  state: PickState | undefined,
  panicThresholdPercent: number,
): { hosts: EndpointInfo[]; panic: boolean } {
  const ready = endpoints.filter((e) => e.healthy);
  if (ready.length === 0 || !state?.isEjected) return { hosts: ready, panic: false };
  const healthy = ready.filter((e) => !state.isEjected!(e.uid));
  if (panicThresholdPercent > 0 && (100 * healthy.length) / ready.length < panicThresholdPercent) {
    return { hosts: ready, panic: true };
  }
  return { hosts: healthy, panic: false };
}

function passthrough(hosts: EndpointInfo[], ctx: PickContext): EndpointInfo {
  const dst = ctx.originalDestination;
  const match =
    dst && hosts.find((e) => e.address === dst.address && (dst.port === undefined || e.port === dst.port));
  return match ?? hosts[0]!;
}

/** The request's hash per the policy's key, and the cookie to set when Envoy would generate one. */
export function requestHash(
  key: HashKey | undefined,
  ctx: PickContext,
): { hash?: number; setCookie?: string } {
  if (!key) return {};
  switch (key.kind) {
    case "header": {
      const value = ctx.headers?.[key.name];
      return value === undefined ? {} : { hash: hash32(value) };
    }
    case "sourceIp":
      return ctx.sourceIp ? { hash: hash32(ctx.sourceIp) } : {};
    case "queryParameter": {
      const value = queryParameter(ctx.path, key.name);
      return value === undefined ? {} : { hash: hash32(value) };
    }
    case "cookie": {
      const value = cookieValue(ctx.headers?.["cookie"], key.name);
      if (value !== undefined) return { hash: hash32(value) };
      if (key.ttlMs === undefined) return {};
      // Envoy derives the value from the connection's addresses so that concurrent requests on one
      // connection get the same cookie, then hashes that value like a received cookie.
      const generated = hash64Hex(`${ctx.sourceIp ?? ""}:${ctx.sourcePort ?? ""}`);
      return { hash: hash32(generated), setCookie: setCookieValue(key, generated) };
    }
  }
}

/** Envoy's makeSetCookieValue: quoted value, Max-Age unless a session cookie, Path, attributes, HttpOnly. */
function setCookieValue(key: Extract<HashKey, { kind: "cookie" }>, value: string): string {
  let out = `${key.name}="${value}"`;
  const maxAge = Math.floor((key.ttlMs ?? 0) / 1000);
  if (maxAge > 0) out += `; Max-Age=${maxAge}`;
  if (key.path) out += `; Path=${key.path}`;
  for (const attr of key.attributes) out += attr.value ? `; ${attr.name}=${attr.value}` : `; ${attr.name}`;
  return `${out}; HttpOnly`;
}

/** The first cookie of that name, with surrounding double quotes removed (as Envoy reads it). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

/** The first value of a query parameter, undecoded; a bare `name` counts as an empty value. */
export function queryParameter(path: string | undefined, name: string): string | undefined {
  const q = path?.indexOf("?") ?? -1;
  if (!path || q < 0) return undefined;
  const query = path.slice(q + 1).split("#")[0]!;
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === name) return eq < 0 ? "" : pair.slice(eq + 1);
  }
  return undefined;
}
