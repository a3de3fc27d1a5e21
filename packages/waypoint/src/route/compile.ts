// The waypoint's VirtualService route table: compiled once per config update, queried per
// request. It picks the VirtualService that owns the request's host (most specific host wins),
// keeps the rules that apply on the dialled port, and returns the first rule that matches.

import type { L7Request } from "../model/request.js";
import type { RouteDecision, VsRef } from "./decision.js";
import {
  defaultHostResolver,
  type HostResolver,
  hostMatches,
  hostSpecificity,
  isIpAddress,
  namespaceOfHost,
  resolveHost,
  stripPort,
} from "./hosts.js";
import { type CompiledMatch, matchRequest, sourceNamespaceOf } from "./match.js";
import { defaultRetryPolicy } from "./retry.js";
import { type CompiledRule, compileRule, decide } from "./route.js";
import { ConfigProblems, type VsObject } from "./spec.js";

export interface CompileOptions {
  /**
   * The waypoint's own namespace. When set, as in Istio's waypoint, a VirtualService applies
   * only if it lives here or in the destination service's namespace, and is exported here.
   */
  namespace?: string;
  /** Expands a short host ("reviews") in the VirtualService's namespace; default `<name>.<ns>.svc.cluster.local`. */
  defaultHostResolver?: HostResolver;
  /**
   * An ingress gateway's table: the Gateways it serves, as "<namespace>/<name>". Then only the
   * VirtualServices (and match blocks) bound to one of them apply, the host is the request's
   * Host whatever it is, and a request no VirtualService routes is answered 404 (no default route).
   */
  gateways?: readonly string[];
}

export interface RouteEntry {
  rule: CompiledRule;
  match?: CompiledMatch;
}

export interface CompiledVirtualService {
  ref: VsRef;
  hosts: string[];
  rules: CompiledRule[];
  /** Istio breaks ties between equally specific hosts by age, oldest first; then input order. */
  createdAt: number;
  order: number;
  entriesByPort: Map<number, RouteEntry[]>;
}

const MESH_GATEWAY = "mesh";
/** Bounds the host → VirtualService memo; destination hosts come from the mesh, so it rarely fills. */
const SELECTION_CACHE_LIMIT = 10_000;

/**
 * Compiles VirtualServices for the waypoint. Throws an AmbientError (OBJECT_INVALID) listing
 * every field that cannot be used (an RE2-invalid regex, an unreadable duration, an unsupported
 * redirect code) so a caller can keep its previous table.
 */
export function compileRoutes(virtualServices: VsObject[], opts: CompileOptions = {}): RouteTable {
  const resolver = opts.defaultHostResolver ?? defaultHostResolver;
  const problems = new ConfigProblems();
  const compiled: CompiledVirtualService[] = [];

  virtualServices.forEach((vs, order) => {
    const namespace = vs.metadata.namespace || "default";
    const ref: VsRef = { namespace, name: vs.metadata.name };
    const spec = vs.spec ?? {};
    if (opts.gateways) {
      if (!boundTo(spec.gateways, namespace, opts.gateways)) return;
    } else if (spec.gateways && spec.gateways.length > 0 && !spec.gateways.includes(MESH_GATEWAY)) {
      // Only mesh-bound VirtualServices steer waypoint traffic; no `gateways` means mesh.
      return;
    }
    // Istio's waypoint takes the first matching VirtualService that has HTTP rules.
    if (!spec.http || spec.http.length === 0) return;
    if (opts.namespace !== undefined && !exportedTo(spec.exportTo, namespace, opts.namespace)) return;

    const object = `${namespace}/${ref.name}`;
    const rules = spec.http.flatMap((rule, i) => {
      const r = compileRule(rule ?? {}, { vs: ref, object, path: `spec.http[${i}]`, resolver, problems });
      return r ? [r] : [];
    });
    const createdAt = Date.parse(vs.metadata.creationTimestamp ?? "");
    compiled.push({
      ref,
      hosts: (spec.hosts ?? []).map((h) => resolveHost(h, namespace, resolver)),
      rules,
      createdAt: Number.isNaN(createdAt) ? Number.POSITIVE_INFINITY : createdAt,
      order,
      entriesByPort: new Map(),
    });
  });

  problems.throwIfAny();
  return new RouteTable(compiled, opts, resolver);
}

/**
 * Whether a VirtualService's (or match block's) `gateways` names one of `served`: "name" is in the
 * VirtualService's namespace, "ns/name" as written; "mesh" and an empty list are not a gateway.
 */
export function boundTo(
  gateways: readonly string[] | undefined,
  namespace: string,
  served: readonly string[],
): boolean {
  return (gateways ?? []).some((g) => served.includes(g.includes("/") ? g : `${namespace}/${g}`));
}

/** Istio's exportTo: absent or "*" is everywhere, "." the object's own namespace, "~" nowhere. */
function exportedTo(exportTo: string[] | undefined, namespace: string, waypointNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some(
    (e) => e === "*" || e === waypointNamespace || (e === "." && namespace === waypointNamespace),
  );
}

export class RouteTable {
  private readonly selection = new Map<string, CompiledVirtualService | null>();
  private readonly defaultDecision: RouteDecision = { kind: "default", retry: defaultRetryPolicy() };

  constructor(
    private readonly services: CompiledVirtualService[],
    private readonly opts: CompileOptions,
    private readonly resolver: HostResolver,
  ) {}

  get size(): number {
    return this.services.length;
  }

  /**
   * Routes one request. `random` (in [0, 1)) drives the weighted destination pick only; faults
   * and mirrors are rolled by the engine with `faultApplies`.
   */
  route(req: L7Request, random: () => number = Math.random): RouteDecision {
    const vs = this.selectVirtualService(req);
    // A gateway has no default route: a host nothing routes is 404 (Envoy's NR).
    if (!vs) return this.opts.gateways ? { kind: "no-route" } : this.defaultDecision;
    const entries = this.entriesFor(vs, req.port);
    // Istio's waypoint falls back to default routing when a VirtualService yields no routes
    // for this port (every block pinned to another port, to gateways, or to sourceLabels).
    if (entries.length === 0)
      return this.opts.gateways ? { kind: "no-route", virtualService: vs.ref } : this.defaultDecision;
    for (const entry of entries) {
      if (entry.match === undefined || matchRequest(entry.match, req)) {
        return decide(entry.rule, entry.match, vs.ref, req, random);
      }
    }
    return { kind: "no-route", virtualService: vs.ref };
  }

  /** Which VirtualService owns this request's host, if any (for debugging and admin views). */
  virtualServiceFor(req: L7Request): VsRef | undefined {
    return this.selectVirtualService(req)?.ref;
  }

  /** The VirtualService for the destination host, or failing that for the Host/:authority. */
  private selectVirtualService(req: L7Request): CompiledVirtualService | undefined {
    // At a gateway the Host is all there is: the connection was made to the gateway itself.
    if (this.opts.gateways) return this.best(stripPort(req.authority.toLowerCase()), undefined);
    const destination = req.destination.host.toLowerCase();
    if (!isIpAddress(destination)) {
      const key = `${destination}|${req.destination.namespace ?? ""}`;
      let hit = this.selection.get(key);
      if (hit === undefined) {
        hit = this.best(destination, req.destination.namespace ?? namespaceOfHost(destination)) ?? null;
        if (this.selection.size >= SELECTION_CACHE_LIMIT) this.selection.clear();
        this.selection.set(key, hit);
      }
      if (hit) return hit;
    }
    const authority = stripPort(req.authority.toLowerCase());
    if (authority === "" || isIpAddress(authority) || authority === destination) return undefined;
    // A bare name resolves like the client's DNS search path would: in the client's namespace.
    const clientNamespace = sourceNamespaceOf(req);
    const host =
      authority.includes(".") || clientNamespace === undefined
        ? authority
        : resolveHost(authority, clientNamespace, this.resolver);
    return this.best(host, namespaceOfHost(host) ?? req.destination.namespace);
  }

  private best(host: string, serviceNamespace: string | undefined): CompiledVirtualService | undefined {
    let best: CompiledVirtualService | undefined;
    let bestScore = -1;
    for (const vs of this.services) {
      if (this.opts.namespace !== undefined && vs.ref.namespace !== this.opts.namespace) {
        if (vs.ref.namespace !== serviceNamespace) continue;
      }
      let score = -1;
      for (const pattern of vs.hosts) {
        if (hostMatches(pattern, host)) score = Math.max(score, hostSpecificity(pattern));
      }
      if (score < 0) continue;
      if (!best || score > bestScore || (score === bestScore && older(vs, best))) {
        best = vs;
        bestScore = score;
      }
    }
    return best;
  }

  /** The rule/match pairs that can apply on `port`, in order: Istio's per-port route list. */
  private entriesFor(vs: CompiledVirtualService, port: number): RouteEntry[] {
    let entries = vs.entriesByPort.get(port);
    if (entries) return entries;
    entries = [];
    outer: for (const rule of vs.rules) {
      if (!rule.matches) {
        entries.push({ rule });
        break; // a rule without matches catches everything after it
      }
      for (const match of rule.matches) {
        if (match.port !== undefined && match.port !== port) continue;
        // Source labels cannot be known at a waypoint; Istio drops such blocks (istio#51565).
        if (match.sourceLabels) continue;
        if (this.opts.gateways) {
          if (match.gateways && !boundTo(match.gateways, vs.ref.namespace, this.opts.gateways)) continue;
        } else if (match.gateways && !match.gateways.includes(MESH_GATEWAY)) continue;
        entries.push({ rule, match });
        if (isCatchAll(match)) break outer;
      }
    }
    vs.entriesByPort.set(port, entries);
    return entries;
  }
}

function older(a: CompiledVirtualService, b: CompiledVirtualService): boolean {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return a.order < b.order;
}

/** Mirrors Istio's IsCatchAllRoute: nothing but a "/" prefix (or ".*" regex) path match. */
function isCatchAll(m: CompiledMatch): boolean {
  const uri = m.uri?.match;
  const anyPath =
    uri === undefined ||
    uri.kind === "present" ||
    (uri.kind === "prefix" && uri.value === "/") ||
    (uri.kind === "regex" && uri.value === ".*");
  return (
    anyPath &&
    !m.scheme &&
    !m.method &&
    !m.authority &&
    m.headers.length === 0 &&
    m.withoutHeaders.length === 0 &&
    m.queryParams.length === 0 &&
    m.sourceNamespace === undefined
  );
}
