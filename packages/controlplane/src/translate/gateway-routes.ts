// Gateway API routes in waypoints (GAMMA): each HTTPRoute and GRPCRoute attached to a Service (or
// to a waypoint Gateway) becomes rules of one VirtualService per Service host, so the waypoint
// keeps one routing engine (route/). Istio does the same internally (istio#36719: "HTTPRoute and
// VS do not need to be 1:1"). Also decides each route's status per parentRef, and which
// VirtualService hosts an HTTPRoute takes over.

import { type GatewayAddress, INVALID_BACKEND_HOST_SUFFIX } from "@ambient/core";
import {
  type BackendRef,
  type Gateway,
  type GrpcRoute,
  type GrpcRouteMatch,
  type HttpHeaderMatch,
  type HttpHeaderModifier,
  type HttpPathModifier,
  type HttpRoute,
  type HttpRouteMatch,
  type KubeObject,
  namespaceOf,
  type ParentReference,
  type RouteFilter,
  type Service,
  type VirtualService,
} from "@ambient/kube";
import { compareStrings, serviceHostname, type TranslateContext } from "./context.js";
import { isIngressGateway } from "./ingress.js";
import { keyOf } from "./snapshot.js";
import { isWaypointGateway, waypointAddress } from "./waypoints.js";

export const GATEWAY_CONTROLLER = "istio.io/gateway-controller";

export type RouteObject = HttpRoute | GrpcRoute;

export interface RouteCondition {
  status: "True" | "False";
  reason: string;
  message: string;
}

/** One `status.parents[]` entry of a route, as Istio writes it. */
export interface RouteParentStatus {
  parentRef: ParentReference;
  accepted: RouteCondition;
  resolvedRefs: RouteCondition;
}

export interface GatewayRoutesResult {
  /** The user's VirtualServices (minus hosts an HTTPRoute took) then the generated ones. */
  virtualServices: VirtualService[];
  /** objectKey of each route → its parents' status (only parents this controller owns). */
  routeStatus: Map<string, RouteParentStatus[]>;
}

export interface GatewayRoutesInput {
  httpRoutes: readonly HttpRoute[];
  grpcRoutes: readonly GrpcRoute[];
  services: readonly Service[];
  gateways: readonly Gateway[];
  virtualServices: readonly VirtualService[];
  waypointFor: (svc: Service) => GatewayAddress | undefined;
}

type Json = Record<string, unknown>;

/** One VirtualService `http[]` entry with what the Gateway API precedence sort needs. */
interface Entry {
  http: Json;
  rank: number[];
}

export function translateGatewayRoutes(
  input: GatewayRoutesInput,
  ctx: TranslateContext,
): GatewayRoutesResult {
  const services = new Map<string, Service>();
  for (const svc of input.services) services.set(`${namespaceOf(svc)}/${svc.metadata.name}`, svc);
  const waypointGateways = new Map<string, Gateway>();
  const ingressGateways = new Map<string, Gateway>();
  for (const gw of input.gateways) {
    if (isWaypointGateway(gw)) waypointGateways.set(`${namespaceOf(gw)}/${gw.metadata.name}`, gw);
    if (isIngressGateway(gw)) ingressGateways.set(`${namespaceOf(gw)}/${gw.metadata.name}`, gw);
  }
  // Routes on ingress Gateways: one VirtualService per route and Gateway, bound to it.
  const ingressRoutes: VirtualService[] = [];

  const routeStatus = new Map<string, RouteParentStatus[]>();
  // Service key → its http entries and the routes they came from.
  const byService = new Map<string, { svc: Service; entries: Entry[]; routes: RouteObject[] }>();
  const routes: RouteObject[] = [...input.httpRoutes, ...input.grpcRoutes].sort(olderFirst);

  for (const route of routes) {
    const ns = namespaceOf(route);
    const resolved = resolveBackends(route, services);
    // A route on several Services is converted once per Service; its warnings are said once.
    const said = new Set<string>();
    const warnOnce = (message: string) => {
      if (said.has(message)) return;
      said.add(message);
      ctx.warn(route, message);
    };
    const parents: RouteParentStatus[] = [];
    const targets: { svc: Service; port?: number }[] = [];
    // Ingress Gateway key → the Gateway and the parentRefs that attach this route to it.
    const ingressParents = new Map<string, { gw: Gateway; refs: ParentReference[] }>();
    for (const parentRef of route.spec?.parentRefs ?? []) {
      const kind = parentRef.kind ?? "Gateway";
      const group = parentRef.group ?? "gateway.networking.k8s.io";
      const parentNs = parentRef.namespace ?? ns;
      const fail = (reason: string, message: string) =>
        parents.push({
          parentRef,
          accepted: { status: "False", reason, message },
          resolvedRefs: resolved.condition,
        });
      if (kind === "Service" && (group === "" || group === "core")) {
        const svc = services.get(`${parentNs}/${parentRef.name}`);
        if (parentNs !== ns) {
          fail(
            "NotAllowedByListeners",
            "only routes in the Service's own namespace (producer routes) are supported",
          );
        } else if (!svc) {
          fail("NoMatchingParent", `Service ${parentNs}/${parentRef.name} not found`);
        } else if (!input.waypointFor(svc)) {
          fail(
            "NoMatchingParent",
            `the Service has no waypoint: in ambient mode ztunnel is L4 and applies no HTTP routes (label the Service or namespace istio.io/use-waypoint)`,
          );
        } else {
          const port = parentPort(svc, parentRef);
          if (port === null) {
            fail(
              "NoMatchingParent",
              `Service ${parentNs}/${parentRef.name} has no port ${parentRef.sectionName ?? parentRef.port}`,
            );
          } else {
            targets.push({ svc, ...(port !== undefined ? { port } : {}) });
            parents.push({ parentRef, accepted: ACCEPTED, resolvedRefs: resolved.condition });
          }
        }
      } else if (
        kind === "Gateway" &&
        group === "gateway.networking.k8s.io" &&
        ingressGateways.has(`${parentNs}/${parentRef.name}`)
      ) {
        const gw = ingressGateways.get(`${parentNs}/${parentRef.name}`)!;
        const refused = ingressAttachment(gw, route, parentRef);
        if (refused) {
          fail("NotAllowedByListeners", refused);
          continue;
        }
        const attached = ingressParents.get(`${parentNs}/${parentRef.name}`);
        if (attached) attached.refs.push(parentRef);
        else ingressParents.set(`${parentNs}/${parentRef.name}`, { gw, refs: [parentRef] });
        parents.push({ parentRef, accepted: ACCEPTED, resolvedRefs: resolved.condition });
      } else if (kind === "Gateway" && group === "gateway.networking.k8s.io") {
        const gw = waypointGateways.get(`${parentNs}/${parentRef.name}`);
        if (!gw) continue; // another controller's Gateway (or none): not ours to report on
        const address = JSON.stringify(waypointAddress(gw.metadata.name, namespaceOf(gw)));
        const hostnames = route.spec?.hostnames ?? [];
        for (const svc of input.services) {
          const bound = input.waypointFor(svc);
          if (!bound || JSON.stringify(bound) !== address) continue;
          if (hostnames.length > 0 && !hostnames.some((h) => hostMatchesService(h, svc))) continue;
          targets.push({ svc });
        }
        parents.push({ parentRef, accepted: ACCEPTED, resolvedRefs: resolved.condition });
      }
    }
    for (const { gw, refs } of ingressParents.values())
      ingressRoutes.push(ingressVirtualService(route, gw, refs, resolved.missing, warnOnce));
    if (parents.length > 0) routeStatus.set(keyOf(route), parents);
    // Local mode writes no status: the log is where a route that does nothing shows up.
    for (const p of parents) {
      if (p.accepted.status === "False")
        ctx.warn(
          route,
          `not applied to ${p.parentRef.kind ?? "Gateway"} ${p.parentRef.name}: ${p.accepted.message}`,
        );
    }
    if (resolved.condition.status === "False") ctx.warn(route, resolved.condition.message);

    for (const target of targets) {
      const key = `${namespaceOf(target.svc)}/${target.svc.metadata.name}`;
      let group = byService.get(key);
      if (!group) {
        group = { svc: target.svc, entries: [], routes: [] };
        byService.set(key, group);
      }
      if (!group.routes.includes(route)) group.routes.push(route);
      group.entries.push(...routeEntries(route, target.port, resolved.missing, warnOnce));
    }
  }

  // Each Service host an HTTPRoute owns: a VirtualService naming the same host yields it.
  const owned = new Map<string, RouteObject[]>();
  const generated: VirtualService[] = [];
  for (const [, { svc, entries, routes: from }] of [...byService].sort(([a], [b]) => compareStrings(a, b))) {
    const ns = namespaceOf(svc);
    const host = serviceHostname(svc.metadata.name, ns);
    owned.set(host, from);
    entries.sort(byPrecedence);
    const first = from[0]!;
    const label = `${first.kind.toLowerCase()}.${first.metadata.name}${from.length > 1 ? `+${from.length - 1}` : ""}`;
    generated.push({
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: {
        name: `${label}@${svc.metadata.name}`,
        namespace: ns,
        annotations: {
          "ambient.io/generated-from": from
            .map((r) => `${r.kind}/${namespaceOf(r)}/${r.metadata.name}`)
            .join(","),
        },
      },
      spec: { hosts: [host], http: entries.map((e) => e.http) },
    });
  }

  const virtualServices: VirtualService[] = [];
  for (const vs of input.virtualServices) {
    const hosts = Array.isArray(vs.spec?.hosts) ? (vs.spec.hosts as string[]) : [];
    const ns = namespaceOf(vs);
    // Only mesh VirtualServices compete with GAMMA routes; one bound to a gateway is the gateway's.
    const gatewaysOf = Array.isArray(vs.spec?.["gateways"]) ? (vs.spec["gateways"] as string[]) : [];
    if (gatewaysOf.length > 0 && !gatewaysOf.includes("mesh")) {
      virtualServices.push(vs);
      continue;
    }
    const kept = hosts.filter((h) => {
      const from = owned.get(fqdn(h, ns));
      if (!from) return true;
      const names = from.map((r) => `${r.kind} ${namespaceOf(r)}/${r.metadata.name}`).join(", ");
      // Istio documents mixing the two APIs on one service as unsupported, with undefined
      // behaviour; here it is defined: Gateway API is what Istio's waypoints are configured with.
      ctx.warn(
        vs,
        `VirtualService ${ns}/${vs.metadata.name} and ${names} both route host ${fqdn(h, ns)}; the ${from[0]!.kind} wins and the VirtualService is ignored for that host (Istio does not support mixing the two on one service)`,
      );
      return false;
    });
    if (kept.length === hosts.length) virtualServices.push(vs);
    else if (kept.length > 0) virtualServices.push({ ...vs, spec: { ...vs.spec, hosts: kept } });
  }
  virtualServices.push(...generated, ...ingressRoutes);
  return { virtualServices, routeStatus };
}

/**
 * Why `route` may not attach to ingress Gateway `gw` through `ref`, or undefined. A listener's
 * allowedRoutes.namespaces is Same by default (All and Same here; a Selector is refused by name).
 */
export function ingressAttachment(gw: Gateway, route: RouteObject, ref: ParentReference): string | undefined {
  const listeners = (gw.spec?.listeners ?? []).filter(
    (l) =>
      (ref.sectionName === undefined || l.name === ref.sectionName) &&
      (ref.port === undefined || l.port === ref.port),
  );
  if (listeners.length === 0)
    return `Gateway ${namespaceOf(gw)}/${gw.metadata.name} has no listener ${ref.sectionName ?? ref.port}`;
  const sameNamespace = namespaceOf(route) === namespaceOf(gw);
  const allowed = listeners.some((l) => {
    const from =
      (l["allowedRoutes"] as { namespaces?: { from?: string } } | undefined)?.namespaces?.from ?? "Same";
    return from === "All" || (from === "Same" && sameNamespace);
  });
  return allowed
    ? undefined
    : `the listeners of Gateway ${namespaceOf(gw)}/${gw.metadata.name} allow routes from their own namespace only (allowedRoutes.namespaces.from)`;
}

/**
 * An HTTPRoute (or GRPCRoute) on an ingress Gateway as a VirtualService bound to that Gateway:
 * its hostnames as hosts ("*" when it names none), its rules in Gateway API precedence. A
 * sectionName or port pins the rules to that listener's port, as Istio's conversion does. One
 * VirtualService per route and Gateway, whatever the number of parentRefs to it (one per listener
 * is common): they would otherwise share a resource name and all but one be lost.
 */
function ingressVirtualService(
  route: RouteObject,
  gw: Gateway,
  refs: ParentReference[],
  missing: Set<BackendRef>,
  warnOnce: (message: string) => void,
): VirtualService {
  const ns = namespaceOf(route);
  const entries = refs.flatMap((ref) => {
    const listener = (gw.spec?.listeners ?? []).find(
      (l) =>
        (ref.sectionName !== undefined && l.name === ref.sectionName) ||
        (ref.port !== undefined && l.port === ref.port),
    );
    return routeEntries(route, listener?.port, missing, warnOnce);
  });
  entries.sort(byPrecedence);
  const hostnames = route.spec?.hostnames ?? [];
  // A Gateway of another namespace is named with it: two Gateways may share a name.
  const gwName = namespaceOf(gw) === ns ? gw.metadata.name : `${gw.metadata.name}.${namespaceOf(gw)}`;
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: {
      name: `${route.kind.toLowerCase()}.${route.metadata.name}@gateway.${gwName}`,
      namespace: ns,
      annotations: { "ambient.io/generated-from": `${route.kind}/${ns}/${route.metadata.name}` },
    },
    spec: {
      hosts: hostnames.length > 0 ? [...hostnames] : ["*"],
      gateways: [`${namespaceOf(gw)}/${gw.metadata.name}`],
      http: entries.map((e) => e.http),
    },
  };
}

export const ACCEPTED: RouteCondition = { status: "True", reason: "Accepted", message: "Route was valid" };
const RESOLVED: RouteCondition = {
  status: "True",
  reason: "ResolvedRefs",
  message: "All references resolved",
};

function olderFirst(a: KubeObject, b: KubeObject): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? "") || Number.POSITIVE_INFINITY;
  const tb = Date.parse(b.metadata.creationTimestamp ?? "") || Number.POSITIVE_INFINITY;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return compareStrings(keyOf(a), keyOf(b));
}

/** The Service port a parentRef names: undefined for every port, null when there is no such port. */
function parentPort(svc: Service, ref: ParentReference): number | undefined | null {
  const ports = svc.spec?.ports ?? [];
  if (ref.port !== undefined) return ports.some((p) => p.port === ref.port) ? ref.port : null;
  if (ref.sectionName !== undefined) return ports.find((p) => p.name === ref.sectionName)?.port ?? null;
  return undefined;
}

function hostMatchesService(hostname: string, svc: Service): boolean {
  const ns = namespaceOf(svc);
  const full = serviceHostname(svc.metadata.name, ns);
  if (hostname.startsWith("*.")) return full.endsWith(hostname.slice(1));
  return hostname === full || hostname === svc.metadata.name || hostname === `${svc.metadata.name}.${ns}`;
}

/** A VirtualService host as a FQDN: short names are in the VirtualService's namespace. */
function fqdn(host: string, namespace: string): string {
  if (host.includes("*")) return host;
  const parts = host.split(".");
  if (parts.length === 1) return serviceHostname(host, namespace);
  if (parts.length === 2) return serviceHostname(parts[0]!, parts[1]!);
  return host;
}

export interface ResolvedBackends {
  condition: RouteCondition;
  /** backendRefs (by object identity) that resolve to nothing: their share answers 500. */
  missing: Set<BackendRef>;
}

/** Any route's rules as far as backends go (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute). */
type BackendRules = KubeObject<{ rules?: { backendRefs?: BackendRef[]; filters?: RouteFilter[] }[] }>;

export function resolveBackends(route: BackendRules, services: Map<string, Service>): ResolvedBackends {
  const ns = namespaceOf(route);
  const missing = new Set<BackendRef>();
  let condition = RESOLVED;
  const check = (ref: BackendRef) => {
    const kind = ref.kind ?? "Service";
    const group = ref.group ?? "";
    const refNs = ref.namespace ?? ns;
    let problem: RouteCondition | undefined;
    if (kind !== "Service" || (group !== "" && group !== "core")) {
      problem = {
        status: "False",
        reason: "InvalidKind",
        message: `backendRef ${group}/${kind} ${ref.name} is not a Service`,
      };
    } else if (refNs !== ns) {
      problem = {
        status: "False",
        reason: "RefNotPermitted",
        message: `backendRef to Service ${refNs}/${ref.name} crosses namespaces (ReferenceGrant is not supported)`,
      };
    } else if (!services.has(`${refNs}/${ref.name}`)) {
      problem = {
        status: "False",
        reason: "BackendNotFound",
        message: `backend Service ${refNs}/${ref.name} not found`,
      };
    }
    if (!problem) return;
    missing.add(ref);
    if (condition === RESOLVED) condition = problem;
  };
  for (const rule of route.spec?.rules ?? []) {
    for (const backend of rule.backendRefs ?? []) check(backend);
    for (const filter of rule.filters ?? []) if (filter.requestMirror) check(filter.requestMirror.backendRef);
  }
  return { condition, missing };
}

/** The VirtualService `http[]` entries of one route for one Service: one per match, so they sort. */
function routeEntries(
  route: RouteObject,
  port: number | undefined,
  missing: Set<BackendRef>,
  warn: (message: string) => void,
): Entry[] {
  const ns = namespaceOf(route);
  const entries: Entry[] = [];
  (route.spec?.rules ?? []).forEach((rule, ruleIndex) => {
    const action = ruleAction(rule, ns, missing, warn);
    const name = `${ns}.${route.metadata.name}.${rule.name ?? ruleIndex}`;
    const matches: Json[][] =
      route.kind === "GRPCRoute"
        ? ((rule.matches ?? []) as GrpcRouteMatch[]).map((m) => [grpcMatch(m)])
        : ((rule.matches ?? []) as HttpRouteMatch[]).map(httpMatches);
    if (matches.length === 0) matches.push([{ uri: { prefix: "/" } }]);
    for (const alternatives of matches) {
      for (const match of alternatives) {
        if (port !== undefined) match.port = port;
        entries.push({ http: { name, match: [match], ...action(match) }, rank: rankOf(match) });
      }
    }
  });
  return entries;
}

/**
 * A Gateway API PathPrefix matches whole path elements ("/foo" matches "/foo/bar", not
 * "/foobar"); a VirtualService prefix is a string prefix, so "/foo" becomes exact "/foo" plus
 * prefix "/foo/".
 */
function httpMatches(m: HttpRouteMatch): Json[] {
  const common: Json = {};
  if (m.headers?.length) common.headers = stringMatches(m.headers, true);
  if (m.queryParams?.length) common.queryParams = stringMatches(m.queryParams, false);
  if (m.method) common.method = { exact: m.method };
  const type = m.path?.type ?? "PathPrefix";
  const value = m.path?.value ?? "/";
  if (type === "Exact") return [{ uri: { exact: value }, ...common }];
  if (type === "RegularExpression") return [{ uri: { regex: value }, ...common }];
  const trimmed = value.replace(/\/+$/, "");
  if (trimmed === "") return [{ uri: { prefix: "/" }, ...common }];
  return [
    { uri: { exact: trimmed }, ...common },
    { uri: { prefix: `${trimmed}/` }, ...common },
  ];
}

function grpcMatch(m: GrpcRouteMatch): Json {
  const out: Json = {};
  if (m.headers?.length) out.headers = stringMatches(m.headers, true);
  const method = m.method;
  if (method && (method.service || method.method)) {
    if ((method.type ?? "Exact") === "RegularExpression") {
      out.uri = { regex: `/${method.service || "[^/]+"}/${method.method || "[^/]+"}` };
    } else if (method.service && method.method) {
      out.uri = { exact: `/${method.service}/${method.method}` };
    } else if (method.service) {
      out.uri = { prefix: `/${method.service}/` };
    } else {
      out.uri = { regex: `/[^/]+/${escapeRegex(method.method!)}` };
    }
  } else {
    out.uri = { prefix: "/" };
  }
  return out;
}

function stringMatches(list: HttpHeaderMatch[], lowercase: boolean): Json {
  const out: Json = {};
  for (const h of list) {
    const key = lowercase ? h.name.toLowerCase() : h.name;
    if (key in out) continue; // Gateway API: the first match of a repeated name counts
    out[key] = h.type === "RegularExpression" ? { regex: h.value } : { exact: h.value };
  }
  return out;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Gateway API precedence (HTTPRoute spec, "Rules"): exact path, then longest prefix, then a method
 * match, then most header matches, then most query matches; a regex path sorts between exact and
 * prefix as Istio does. Ties keep route age, then namespace/name, then rule order.
 */
function rankOf(match: Json): number[] {
  const uri = (match.uri ?? {}) as { exact?: string; prefix?: string; regex?: string };
  const pathRank = uri.exact !== undefined ? 3 : uri.regex !== undefined ? 2 : 1;
  const pathLength = (uri.exact ?? uri.prefix ?? uri.regex ?? "").length;
  const count = (v: unknown) => (v ? Object.keys(v as Json).length : 0);
  return [pathRank, pathLength, match.method ? 1 : 0, count(match.headers), count(match.queryParams)];
}

function byPrecedence(a: Entry, b: Entry): number {
  for (let i = 0; i < a.rank.length; i++) {
    if (a.rank[i] !== b.rank[i]) return b.rank[i]! - a.rank[i]!;
  }
  // Stable across routes: the routes were visited oldest first, so keep insertion order.
  return 0;
}

/** What a rule does, given the match it is paired with (prefix rewrites depend on it). */
function ruleAction(
  rule: {
    filters?: RouteFilter[];
    backendRefs?: BackendRef[];
    timeouts?: { request?: string; backendRequest?: string };
    retry?: { codes?: number[]; attempts?: number };
  },
  ns: string,
  missing: Set<BackendRef>,
  warn: (message: string) => void,
): (match: Json) => Json {
  const base: Json = {};
  const headers: Json = {};
  let redirect: RouteFilter["requestRedirect"];
  let rewrite: RouteFilter["urlRewrite"];
  const mirrors: Json[] = [];
  for (const filter of rule.filters ?? []) {
    switch (filter.type) {
      case "RequestHeaderModifier":
        if (filter.requestHeaderModifier) headers.request = headerOps(filter.requestHeaderModifier);
        break;
      case "ResponseHeaderModifier":
        if (filter.responseHeaderModifier) headers.response = headerOps(filter.responseHeaderModifier);
        break;
      case "RequestRedirect":
        redirect = filter.requestRedirect;
        break;
      case "URLRewrite":
        rewrite = filter.urlRewrite;
        break;
      case "CORS":
        if (filter.cors) base.corsPolicy = corsPolicy(filter.cors as CorsFilter);
        break;
      case "RequestMirror": {
        const m = filter.requestMirror;
        if (!m || missing.has(m.backendRef)) break;
        const percent = m.fraction
          ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100)
          : (m.percent ?? 100);
        mirrors.push({ destination: destination(m.backendRef, ns), percentage: { value: percent } });
        break;
      }
      default:
        warn(`filter type ${filter.type} is not supported in waypoints; ignored`);
    }
  }
  if (Object.keys(headers).length) base.headers = headers;
  if (mirrors.length) base.mirrors = mirrors;
  if (rule.timeouts?.request) base.timeout = rule.timeouts.request;
  const retries: Json = {};
  if (rule.retry?.attempts !== undefined) retries.attempts = rule.retry.attempts;
  // Gateway API: a retry stanza retries connection errors too; the codes add status codes.
  if (rule.retry?.codes?.length)
    retries.retryOn = ["connect-failure", "refused-stream", ...rule.retry.codes].join(",");
  if (rule.timeouts?.backendRequest) retries.perTryTimeout = rule.timeouts.backendRequest;
  if (Object.keys(retries).length) base.retries = retries;

  return (match) => {
    const out: Json = { ...base };
    if (redirect) {
      const r: Json = { redirectCode: redirect.statusCode ?? 302 };
      if (redirect.scheme) r.scheme = redirect.scheme;
      if (redirect.hostname) r.authority = redirect.hostname;
      if (redirect.port !== undefined) r.port = redirect.port;
      // Gateway API: no port means the scheme's well-known port, or with no scheme the request's.
      else r.derivePort = redirect.scheme ? "FROM_PROTOCOL_DEFAULT" : "FROM_REQUEST_PORT";
      const path = pathReplacement(redirect.path, match);
      if (path !== undefined) r.uri = path;
      else if (redirect.path) warn("RequestRedirect ReplacePrefixMatch on a non-prefix match is ignored");
      out.redirect = r;
      delete out.mirrors;
      return out;
    }
    if (rewrite) {
      const rw: Json = {};
      if (rewrite.hostname) rw.authority = rewrite.hostname;
      if (rewrite.path?.type === "ReplaceFullPath") {
        rw.uriRegexRewrite = { match: "^/.*$", rewrite: rewrite.path.replaceFullPath ?? "/" };
      } else if (rewrite.path?.type === "ReplacePrefixMatch") {
        rw.uri = prefixReplacement(rewrite.path.replacePrefixMatch ?? "/", match);
      }
      if (Object.keys(rw).length) out.rewrite = rw;
    }
    out.route = [];
    const backends = (rule.backendRefs ?? []).filter((b) => (b.weight ?? 1) > 0);
    const usable = backends.filter((b) => !missing.has(b));
    // Gateway API: a missing backend's share answers 500. With none usable, every request does;
    // otherwise the missing ones keep their weight toward a host the waypoint answers 500 for.
    if (usable.length === 0) {
      delete out.route;
      delete out.mirrors;
      out.directResponse = { status: 500 };
      return out;
    }
    out.route = backends.map((b) => {
      if (missing.has(b))
        return {
          destination: { host: `${b.name}.${b.namespace ?? ns}${INVALID_BACKEND_HOST_SUFFIX}` },
          weight: b.weight ?? 1,
        };
      const d: Json = { destination: destination(b, ns), weight: b.weight ?? 1 };
      const bh: Json = {};
      for (const f of b.filters ?? []) {
        if (f.type === "RequestHeaderModifier" && f.requestHeaderModifier)
          bh.request = headerOps(f.requestHeaderModifier);
        if (f.type === "ResponseHeaderModifier" && f.responseHeaderModifier)
          bh.response = headerOps(f.responseHeaderModifier);
      }
      if (Object.keys(bh).length) d.headers = bh;
      return d;
    });
    return out;
  };
}

/** A redirect's new path for this match: full path, or prefix swap when the match is a prefix. */
function pathReplacement(path: HttpPathModifier | undefined, match: Json): string | undefined {
  if (!path) return undefined;
  if (path.type === "ReplaceFullPath") return path.replaceFullPath ?? "/";
  const uri = match.uri as { exact?: string; prefix?: string };
  // The exact half of a PathPrefix pair: the whole path is the prefix.
  if (uri.exact !== undefined) return path.replacePrefixMatch ?? "/";
  return undefined;
}

/**
 * The `rewrite.uri` for a ReplacePrefixMatch: on the exact half of a PathPrefix pair the whole
 * path is replaced; on the "/foo/" half the trailing slash was part of the matched prefix, so it
 * is put back ("/foo/x" with replacement "/bar" → "/bar/x", with "/" → "/x").
 */
function prefixReplacement(replacement: string, match: Json): string {
  const uri = match.uri as { exact?: string; prefix?: string };
  if (uri.exact !== undefined) return replacement;
  return replacement.endsWith("/") ? replacement : `${replacement}/`;
}

interface CorsFilter {
  allowOrigins?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  allowCredentials?: boolean;
  maxAge?: number;
}

/** Gateway API's CORS filter as a VirtualService corsPolicy; an origin's `*` matches any prefix. */
function corsPolicy(cors: CorsFilter): Json {
  const out: Json = {};
  if (cors.allowOrigins?.length) {
    out.allowOrigins = cors.allowOrigins.map((o) =>
      o.includes("*") ? { regex: o.split("*").map(escapeRegex).join(".*") } : { exact: o },
    );
  }
  if (cors.allowMethods?.length) out.allowMethods = cors.allowMethods;
  if (cors.allowHeaders?.length) out.allowHeaders = cors.allowHeaders;
  if (cors.exposeHeaders?.length) out.exposeHeaders = cors.exposeHeaders;
  if (cors.allowCredentials !== undefined) out.allowCredentials = cors.allowCredentials;
  if (cors.maxAge !== undefined) out.maxAge = `${cors.maxAge}s`;
  return out;
}

export function destination(ref: BackendRef, ns: string): Json {
  const d: Json = { host: serviceHostname(ref.name, ref.namespace ?? ns) };
  if (ref.port !== undefined) d.port = { number: ref.port };
  return d;
}

function headerOps(mod: HttpHeaderModifier): Json {
  const out: Json = {};
  if (mod.set?.length) out.set = Object.fromEntries(mod.set.map((h) => [h.name, h.value]));
  if (mod.add?.length) out.add = Object.fromEntries(mod.add.map((h) => [h.name, h.value]));
  if (mod.remove?.length) out.remove = mod.remove;
  return out;
}
