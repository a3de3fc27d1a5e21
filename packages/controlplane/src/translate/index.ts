// translate: a consistent set of validated Kubernetes and Istio objects → the workload xDS
// resources ztunnel consumes (Workload, Service, Authorization) plus the objects waypoints
// apply. Pure and deterministic: unchanged input produces byte-identical output. A Translator kept
// across changes recomputes only what a change reaches (changes.ts) and gives the same result.

import type { Authorization, PortList, Service, Workload } from "@ambient/core";
import {
  type AuthorizationPolicy,
  type Gateway,
  type KubeObject,
  namespaceOf,
  type Pod,
  type ServiceEntry,
  type Service as ServiceObject,
  type WorkloadEntry,
} from "@ambient/kube";
import { isWaypointPolicy, translateAuthorizationPolicy } from "./authorization.js";
import { addressesInUse, EntryAddressAllocator } from "./auto-allocate.js";
import { type ChangeScope, changeScope } from "./changes.js";
import {
  compareStrings,
  labelsOf,
  serviceHostname,
  TranslateContext,
  type TranslateOptions,
  type Warning,
} from "./context.js";
import { type RouteParentStatus, translateGatewayRoutes } from "./gateway-routes.js";
import { type IngressConfig, translateIngress } from "./ingress.js";
import { PeerAuthenticationIndex } from "./peer-authentication.js";
import { SelectorIndex } from "./selector-index.js";
import {
  type EntryOutput,
  type EntryWorkloadLookups,
  entryServices,
  translateServiceEntry,
  translateWorkloadEntry,
  workloadEntryLabels,
} from "./service-entries.js";
import { translateService } from "./services.js";
import { buildSnapshot, keyOf } from "./snapshot.js";
import { WaypointIndex } from "./waypoints.js";
import { translatePod, type WorkloadLookups } from "./workloads.js";

export type { TranslateOptions, Warning } from "./context.js";
export type { RouteParentStatus } from "./gateway-routes.js";
export { GATEWAY_CONTROLLER } from "./gateway-routes.js";

export interface WaypointConfig {
  /** The user's VirtualServices and those made from HTTPRoutes and GRPCRoutes (gateway-routes.ts). */
  virtualServices: KubeObject[];
  destinationRules: KubeObject[];
  /** AuthorizationPolicies with targetRef/targetRefs: enforced by waypoints, not ztunnel. */
  authorizationPolicies: KubeObject[];
  requestAuthentications: KubeObject[];
  /** The istio-waypoint Gateways: each waypoint reads its own (listeners, waypoint-for, …). */
  gateways: Gateway[];
  /** Ingress gateways' Istio Gateways, class-istio Gateways, Secrets and own policies (ingress.ts). */
  ingress: IngressConfig;
}

export interface TranslateResult {
  workloads: Workload[];
  /** The pods that became those workloads, in object-key order (their labels go to waypoints). */
  workloadPods: Pod[];
  services: Service[];
  /**
   * objectKey of each ServiceEntry → its Services (also in `services`), the same array while the
   * entry was not recomputed: what its `istio.io/WaypointBound` status is computed from.
   */
  entryServices: ReadonlyMap<string, readonly Service[]>;
  authorizations: Authorization[];
  waypointConfig: WaypointConfig;
  /** objectKey of each HTTPRoute/GRPCRoute → its `status.parents` (the parents this controller owns). */
  routeStatus: ReadonlyMap<string, readonly RouteParentStatus[]>;
  warnings: Warning[];
}

/** How much of the last translation was recomputed (the rest was reused from the one before). */
export interface TranslateStats {
  /** True when nothing was reused: first translation, or a mesh-wide change (see changes.ts). */
  full: boolean;
  pods: number;
  services: number;
  policies: number;
}

/**
 * What the last translation changed, for consumers that keep their own state per object (the CA's
 * pod index, the desired status conditions) and want to update it by the same scope rather than
 * rescan the mesh.
 */
export interface TranslationChange {
  /** Counts committed translations: a consumer that missed one (a failed publish) must rebuild. */
  generation: number;
  /** Keys added, changed or removed since the previous translation; undefined on the first one. */
  keys: ReadonlySet<string> | undefined;
  /** What the change reached (changes.ts); `scope.all` for a first or mesh-wide change. */
  scope: ChangeScope;
  /** Every object in force by objectKey (the snapshot translated). */
  objects: ReadonlyMap<string, KubeObject>;
}

/** Output of one item, and the warnings its translation gave, kept for the next translation. */
interface Cached<T> {
  output: T;
  warnings: Warning[];
}

/** A translation from scratch: what every caller without history gets. */
export function translate(
  objects: Iterable<KubeObject>,
  options: Partial<TranslateOptions> = {},
): TranslateResult {
  return new Translator(options).translate(objects);
}

/**
 * Translates successive versions of the objects, recomputing only the pods, Services and policies
 * a change reaches (changes.ts) and reusing the previous output objects for the rest (which the
 * publisher's encode cache relies on: an unchanged Workload is the same object, never re-encoded).
 * There is one translation definition: a fresh Translator runs every per-item step below, and a
 * warm one skips the steps whose inputs did not change, in the same order, so the result,
 * warnings included, is exactly what a fresh one gives.
 */
export class Translator {
  private readonly options: Partial<TranslateOptions>;
  private previous: Map<string, KubeObject> | undefined;
  private pods = new Map<string, Cached<Workload | undefined>>();
  private services = new Map<string, Cached<Service>>();
  private entries = new Map<string, Cached<EntryOutput>>();
  private workloadEntries = new Map<string, Cached<Workload | undefined>>();
  private policies = new Map<string, Cached<Authorization | undefined>>();
  private readonly allocator = new EntryAddressAllocator();
  private lastStats: TranslateStats = { full: true, pods: 0, services: 0, policies: 0 };
  private lastChange: TranslationChange | undefined;

  constructor(options: Partial<TranslateOptions> = {}) {
    this.options = { ...options };
  }

  get stats(): TranslateStats {
    return this.lastStats;
  }

  /** The change the last translation took in; undefined before the first. */
  get change(): TranslationChange | undefined {
    return this.lastChange;
  }

  translate(objects: Iterable<KubeObject>): TranslateResult {
    const ctx = new TranslateContext(this.options);
    const snapshot = buildSnapshot(objects, ctx);
    const root = ctx.options.rootNamespace;
    const scope = changeScope(this.previous, snapshot.byKey, root);
    const stats: TranslateStats = { full: scope.all, pods: 0, services: 0, policies: 0 };

    // Phase 1: ztunnel's policies (WORKLOAD_SELECTOR ones indexed for the pod join below).
    const authorizations: Authorization[] = [];
    const waypointPolicies: AuthorizationPolicy[] = [];
    // WORKLOAD_SELECTOR policies by namespace; root-namespace ones select pods everywhere.
    const selectorPolicies = new SelectorIndex<string>();
    const rootSelectorPolicies = new SelectorIndex<string>();
    const policies = new Map<string, Cached<Authorization | undefined>>();
    for (const policy of snapshot.authorizationPolicies) {
      if (isWaypointPolicy(policy)) {
        waypointPolicies.push(policy);
        continue;
      }
      const key = keyOf(policy);
      const auth = this.reuse(this.policies, policies, key, ctx, !scope.all && !scope.keys.has(key), () => {
        stats.policies++;
        return translateAuthorizationPolicy(policy, ctx);
      });
      if (!auth) continue;
      authorizations.push(auth);
      if (auth.scope !== "WORKLOAD_SELECTOR") continue;
      const selector = policy.spec?.selector?.matchLabels ?? {};
      const name = `${auth.namespace}/${auth.name}`;
      if (auth.namespace === root) rootSelectorPolicies.add("", selector, name);
      else selectorPolicies.add(auth.namespace, selector, name);
    }

    // Phase 2: the indexes every workload consults. Cheap (one entry per policy, Service or
    // Gateway), so rebuilt every time rather than patched.
    const peerAuth = new PeerAuthenticationIndex(snapshot.peerAuthentications, ctx);
    authorizations.push(...peerAuth.authorizations());
    authorizations.sort((a, b) => compareStrings(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));

    // Pods only ever match Services of their own namespace; selector-less Services have no pods.
    const servicesByNamespace = new SelectorIndex<ServiceObject>();
    for (const svc of snapshot.services) {
      const selector = svc.spec?.selector ?? {};
      if (Object.keys(selector).length > 0) servicesByNamespace.add(namespaceOf(svc), selector, svc);
    }
    // ServiceEntries with a workloadSelector pick Pods and WorkloadEntries of their namespace.
    const entriesByNamespace = new SelectorIndex<ServiceEntry>();
    for (const entry of snapshot.serviceEntries) {
      const selector = entry.spec?.workloadSelector;
      if (selector) entriesByNamespace.add(namespaceOf(entry), selector.labels ?? {}, entry);
    }
    const waypoints = new WaypointIndex(snapshot, ctx);
    // A workload's WORKLOAD_SELECTOR policies: by its namespace and labels, for Pods and WorkloadEntries alike.
    const policiesFor = (ns: string, labels: Record<string, string>): string[] => {
      const keys = new Set([
        ...selectorPolicies.match(ns, labels),
        ...rootSelectorPolicies.match("", labels),
        ...peerAuth.policiesFor(ns, labels),
      ]);
      return [...keys].sort(compareStrings);
    };
    const lookups: WorkloadLookups = {
      servicesFor: (pod: Pod) => servicesByNamespace.match(namespaceOf(pod), labelsOf(pod)),
      entriesFor: (pod: Pod) => entriesByNamespace.match(namespaceOf(pod), labelsOf(pod)),
      policiesFor: (pod: Pod) => policiesFor(namespaceOf(pod), labelsOf(pod)),
      waypointFor: (pod: Pod, serviceAccount: string) => waypoints.forWorkload(pod, serviceAccount),
    };

    // Phase 3: one Workload per pod, in snapshot order (so warnings are too), then by uid.
    const workloads: Workload[] = [];
    const workloadPods: Pod[] = [];
    const pods = new Map<string, Cached<Workload | undefined>>();
    for (const pod of snapshot.pods) {
      const key = keyOf(pod);
      const untouched =
        !scope.all &&
        !scope.keys.has(key) &&
        !scope.podNamespaces.has(namespaceOf(pod)) &&
        !scope.nodes.has(pod.spec?.nodeName ?? "");
      const workload = this.reuse(this.pods, pods, key, ctx, untouched, () => {
        stats.pods++;
        return translatePod(pod, snapshot, lookups, ctx);
      });
      if (!workload) continue;
      workloads.push(workload);
      workloadPods.push(pod);
    }

    // Phase 3b: one Workload per WorkloadEntry, joined to Services and ServiceEntries like a pod.
    const entryLookups: EntryWorkloadLookups = {
      servicesFor: (entry: WorkloadEntry) =>
        workloadEntryServices(entry, servicesByNamespace, entriesByNamespace),
      policiesFor: (entry: WorkloadEntry) => policiesFor(namespaceOf(entry), workloadEntryLabels(entry)),
      waypointFor: (entry: WorkloadEntry, serviceAccount: string) =>
        waypoints.forWorkload(entry, serviceAccount),
    };
    const workloadEntries = new Map<string, Cached<Workload | undefined>>();
    for (const entry of snapshot.workloadEntries) {
      const key = keyOf(entry);
      const untouched = !scope.all && !scope.keys.has(key) && !scope.podNamespaces.has(namespaceOf(entry));
      const workload = this.reuse(this.workloadEntries, workloadEntries, key, ctx, untouched, () => {
        stats.pods++;
        return translateWorkloadEntry(entry, ctx, entryLookups);
      });
      if (workload) workloads.push(workload);
    }

    // Phase 4: Services, and ServiceEntries with their inline endpoints.
    const entries = new Map<string, Cached<EntryOutput>>();
    const entryServiceList: Service[] = [];
    const entryServiceMap = new Map<string, readonly Service[]>();
    for (const entry of snapshot.serviceEntries) {
      const key = keyOf(entry);
      const ns = namespaceOf(entry);
      const untouched = !scope.all && !scope.keys.has(key) && !scope.serviceNamespaces.has(ns);
      const output = this.reuse(this.entries, entries, key, ctx, untouched, () => {
        stats.services++;
        return translateServiceEntry(entry, ctx, (e) => waypoints.forService(e));
      });
      entryServiceList.push(...output.services);
      entryServiceMap.set(key, output.services);
      workloads.push(...output.workloads);
    }
    workloads.sort((a, b) => compareStrings(a.uid, b.uid));

    const services: Service[] = [];
    const serviceCache = new Map<string, Cached<Service>>();
    for (const svc of snapshot.services) {
      const key = keyOf(svc);
      const untouched = !scope.all && !scope.keys.has(key) && !scope.serviceNamespaces.has(namespaceOf(svc));
      services.push(
        this.reuse(this.services, serviceCache, key, ctx, untouched, () => {
          stats.services++;
          return translateService(svc, ctx, (s) => waypoints.forService(s));
        }),
      );
    }
    if (ctx.options.autoAllocateAddresses)
      this.allocateEntryAddresses(services, entryServiceList, entryServiceMap, ctx.options.network);
    services.push(...entryServiceList);

    // Phase 5: HTTPRoutes and GRPCRoutes → VirtualServices of the waypoints. Rebuilt every time,
    // like the rest of the waypoint configuration: it is cheap (one pass over routes and Services).
    const gatewayRoutes = translateGatewayRoutes(
      {
        httpRoutes: snapshot.httpRoutes,
        grpcRoutes: snapshot.grpcRoutes,
        services: snapshot.services,
        gateways: snapshot.gateways,
        virtualServices: snapshot.virtualServices,
        waypointFor: (s) => waypoints.forService(s),
      },
      ctx,
    );
    services.sort((a, b) => compareStrings(`${a.namespace}/${a.hostname}`, `${b.namespace}/${b.hostname}`));

    // Committed only now: a translation that throws leaves the previous state to diff against.
    this.lastChange = {
      generation: (this.lastChange?.generation ?? 0) + 1,
      keys: this.previous ? scope.keys : undefined,
      scope,
      objects: snapshot.byKey,
    };
    this.previous = snapshot.byKey;
    this.policies = policies;
    this.pods = pods;
    this.services = serviceCache;
    this.entries = entries;
    this.workloadEntries = workloadEntries;
    this.lastStats = stats;
    // The snapshot is already in object-key order, so the waypoint lists are too.
    return {
      workloads,
      workloadPods,
      services,
      entryServices: entryServiceMap,
      authorizations,
      waypointConfig: {
        virtualServices: gatewayRoutes.virtualServices,
        destinationRules: snapshot.destinationRules,
        authorizationPolicies: waypointPolicies,
        requestAuthentications: snapshot.requestAuthentications,
        gateways: waypoints.waypointGateways(),
        ingress: translateIngress(snapshot, ctx),
      },
      routeStatus: gatewayRoutes.routeStatus,
      warnings: ctx.warnings,
    };
  }

  /**
   * Replaces, in place, the ServiceEntry services that need an auto-allocated VIP (no addresses,
   * not a wildcard host, not passthrough) with copies carrying one, unique across `k8s` and all
   * entries.
   */
  private allocateEntryAddresses(
    k8s: readonly Service[],
    entryServices: Service[],
    byEntry: Map<string, readonly Service[]>,
    network: string,
  ): void {
    const keyOfService = (s: Service) => `${s.namespace}/${s.name}/${s.hostname}`;
    const requests = entryServices
      .filter(
        (s) =>
          s.addresses.length === 0 && !s.hostname.startsWith("*") && s.loadBalancing?.mode !== "PASSTHROUGH",
      )
      .map((s) => ({ key: keyOfService(s), service: s }));
    const allocated = this.allocator.allocate(requests, addressesInUse([...k8s, ...entryServices]), network);
    if (allocated.size === 0) return;
    const swap = (s: Service) => (s.addresses.length === 0 ? (allocated.get(keyOfService(s)) ?? s) : s);
    for (let i = 0; i < entryServices.length; i++) entryServices[i] = swap(entryServices[i]!);
    for (const [key, list] of byEntry) {
      if (list.some((s) => allocated.has(keyOfService(s)) && s.addresses.length === 0))
        byEntry.set(key, list.map(swap));
    }
  }

  /**
   * The previous output for `key` when `untouched` (its warnings replayed into `ctx` in place),
   * else `compute()` with the warnings it gives recorded. Either way the entry moves to `next`,
   * so items gone from the input leave the cache.
   */
  private reuse<T>(
    previous: Map<string, Cached<T>>,
    next: Map<string, Cached<T>>,
    key: string,
    ctx: TranslateContext,
    untouched: boolean,
    compute: () => T,
  ): T {
    const cached = untouched ? previous.get(key) : undefined;
    if (cached) {
      ctx.warnings.push(...cached.warnings);
      next.set(key, cached);
      return cached.output;
    }
    const from = ctx.warnings.length;
    const output = compute();
    next.set(key, { output, warnings: ctx.warnings.slice(from) });
    return output;
  }
}

/**
 * The services a WorkloadEntry serves: the Services of its namespace whose selector matches its
 * labels (a named target port resolves against the entry's `ports`), and the ServiceEntries whose
 * workloadSelector does.
 */
function workloadEntryServices(
  entry: WorkloadEntry,
  services: SelectorIndex<ServiceObject>,
  entries: SelectorIndex<ServiceEntry>,
): Record<string, PortList> {
  const ns = namespaceOf(entry);
  const labels = workloadEntryLabels(entry);
  const out: Record<string, PortList> = {};
  const byName = (a: KubeObject, b: KubeObject) => compareStrings(a.metadata.name, b.metadata.name);
  for (const svc of [...services.match(ns, labels)].sort(byName)) {
    const ports: PortList["ports"] = [];
    for (const port of svc.spec?.ports ?? []) {
      const target = port.targetPort;
      const resolved =
        typeof target === "number" ? target : target === undefined ? port.port : entry.spec?.ports?.[target];
      if (resolved !== undefined) ports.push({ servicePort: port.port, targetPort: resolved });
    }
    out[`${ns}/${serviceHostname(svc.metadata.name, ns)}`] = { ports };
  }
  for (const se of [...entries.match(ns, labels)].sort(byName)) {
    for (const [key, ports] of Object.entries(entryServices(se, entry.spec))) out[key] ??= ports;
  }
  return out;
}
