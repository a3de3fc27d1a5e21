// ztunnel's view of the mesh: the workloads, services and authorization policies xDS delivered,
// indexed for the lookups the data path makes per connection (by IP, by VIP, by hostname, by
// node) and for endpoint selection. No I/O; it changes only through applyAddresses/Authorizations.

import type { Address, Authorization, Service, Workload } from "@ambient/core";
import { canonicalIp, ipFromBytes, networkKey } from "@ambient/core";
import { addTo, addToList, removeFrom, removeFromList } from "./indexes.js";
import {
  applyRoutingPreference,
  type PickOptions,
  pickRoundRobin,
  RoundRobin,
  usable,
} from "./load-balancer.js";
import { authorizationJson, type StateSnapshot, serviceJson, workloadJson } from "./snapshot.js";
import { type Endpoint, serviceKey, targetPortFor } from "./workload.js";

/** What one applied batch changed; listeners re-read what they need from the state. */
export interface StateChange {
  workloads: boolean;
  services: boolean;
  /** Policies changed, or the WORKLOAD_SELECTOR policies some existing workload lists did. */
  policies: boolean;
  /** uids of workloads that are gone, so per-pod listeners and connections can be closed. */
  removedWorkloads: string[];
}

export type StateListener = (change: StateChange) => void;

/** A batch of resources by xDS name; `XdsChanges` from the Delta ADS client is one. */
export interface ResourceChanges<T> {
  upserts: ReadonlyMap<string, T> | Iterable<readonly [string, T]>;
  removes?: Iterable<string>;
}

export interface ProxyStateOptions {
  /**
   * Called when a change listener throws. The batch is already applied by then, so the error must
   * not reach the xDS client (it would NACK what it holds). Default: rethrown from a microtask.
   */
  onListenerError?: (err: unknown) => void;
}

interface CachedEndpoints {
  generation: number;
  service: Service;
  all: Endpoint[];
  usable: Endpoint[];
}

export class ProxyState {
  private readonly workloads = new Map<string, Workload>();
  /** "<network>/<ip>" → uids, newest last: during pod churn an IP briefly has two owners. */
  private readonly workloadsByIp = new Map<string, string[]>();
  private readonly workloadsByNode = new Map<string, Set<string>>();
  private readonly services = new Map<string, Service>();
  private readonly servicesByVip = new Map<string, string[]>();
  private readonly servicesByHostname = new Map<string, string[]>();
  /** service key → uids of the workloads whose `services` map names it. */
  private readonly endpointUids = new Map<string, Set<string>>();
  private readonly policies = new Map<string, Authorization>();
  private readonly globalPolicies = new Set<string>();
  private readonly namespacePolicies = new Map<string, Set<string>>();
  private readonly listeners = new Set<StateListener>();
  private readonly roundRobin = new RoundRobin();
  /** Bumped by every address change; endpoint lists computed under an older one are stale. */
  private generation = 0;
  private readonly endpointCache = new Map<string, CachedEndpoints>();

  constructor(private readonly options: ProxyStateOptions = {}) {}

  // ---- updates ----

  /** Applies Address upserts (workloads by uid, services by "<ns>/<hostname>") and removals. */
  applyAddresses(changes: ResourceChanges<Address>): void {
    const change = emptyChange();
    for (const name of changes.removes ?? []) {
      if (this.removeWorkload(name)) {
        change.workloads = true;
        change.removedWorkloads.push(name);
      } else if (this.removeService(name)) {
        change.services = true;
      }
    }
    for (const [name, address] of changes.upserts) {
      if (address.workload) {
        // A name that switched kind (never from our control plane, but xDS allows it).
        if (this.removeService(name)) change.services = true;
        const previous = this.removeWorkload(name);
        if (previous && !sameList(previous.authorizationPolicies, address.workload.authorizationPolicies)) {
          change.policies = true;
        }
        this.addWorkload(name, address.workload);
        change.workloads = true;
      } else {
        const removed = this.removeWorkload(name);
        if (removed) change.removedWorkloads.push(name);
        change.workloads ||= removed !== undefined;
        this.removeService(name);
        this.addService(name, address.service);
        change.services = true;
      }
    }
    this.changed(change);
  }

  /** Applies Authorization upserts and removals, by "<ns>/<name>". */
  applyAuthorizations(changes: ResourceChanges<Authorization>): void {
    const change = emptyChange();
    for (const name of changes.removes ?? []) change.policies = this.removePolicy(name) || change.policies;
    for (const [name, policy] of changes.upserts) {
      this.removePolicy(name);
      this.policies.set(name, policy);
      if (policy.scope === "GLOBAL") this.globalPolicies.add(name);
      else if (policy.scope === "NAMESPACE") addTo(this.namespacePolicies, policy.namespace, name);
      change.policies = true;
    }
    this.changed(change);
  }

  /** Calls `listener` after every batch that changed something. Returns the unsubscribe function. */
  onChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- lookups ----

  workloadByUid(uid: string): Workload | undefined {
    return this.workloads.get(uid);
  }

  /** The workload owning `ip` (dotted IPv4 or any IPv6 spelling) on `network`; the newest if two do. */
  workloadByIp(ip: string, network = ""): Workload | undefined {
    const canonical = canonicalIp(ip);
    const uids = canonical === undefined ? undefined : this.workloadsByIp.get(networkKey(network, canonical));
    const uid = uids?.[uids.length - 1];
    return uid === undefined ? undefined : this.workloads.get(uid);
  }

  serviceByVip(ip: string, network = ""): Service | undefined {
    const canonical = canonicalIp(ip);
    const keys = canonical === undefined ? undefined : this.servicesByVip.get(networkKey(network, canonical));
    const key = keys?.[keys.length - 1];
    return key === undefined ? undefined : this.services.get(key);
  }

  /**
   * The service named `<svc>.<ns>.svc.cluster.local`. ServiceEntries can give one hostname to
   * services in several namespaces: `preferNamespace` (the client's) wins then, as in Istio.
   */
  serviceByHostname(hostname: string, preferNamespace?: string): Service | undefined {
    const keys = this.servicesByHostname.get(hostname.toLowerCase());
    if (!keys || keys.length === 0) return undefined;
    const preferred =
      preferNamespace === undefined ? undefined : `${preferNamespace}/${hostname.toLowerCase()}`;
    const key = preferred !== undefined && keys.includes(preferred) ? preferred : keys[0]!;
    return this.services.get(key);
  }

  /** By xDS name, `<ns>/<hostname>`. */
  serviceByKey(key: string): Service | undefined {
    return this.services.get(key);
  }

  policyByKey(key: string): Authorization | undefined {
    return this.policies.get(key);
  }

  /** Workloads whose `services` map names the service, by uid. Any health. */
  endpoints(service: Service): Workload[] {
    const uids = this.endpointUids.get(serviceKey(service));
    if (!uids) return [];
    return [...uids]
      .sort()
      .map((uid) => this.workloads.get(uid))
      .filter((w): w is Workload => w !== undefined);
  }

  /** The endpoints serving `servicePort` of the service, each with the port to dial. Any health. */
  endpointsFor(service: Service, servicePort: number): Endpoint[] {
    return this.cachedEndpoints(service, servicePort).all;
  }

  /** Workloads scheduled on `node`: the pods this ztunnel serves. */
  localWorkloads(node: string): Workload[] {
    const uids = this.workloadsByNode.get(node);
    if (!uids) return [];
    return [...uids].sort().map((uid) => this.workloads.get(uid)!);
  }

  /**
   * The Authorizations that apply to connections to `workload`, as ztunnel selects them: every
   * GLOBAL policy, the NAMESPACE policies of its namespace, and the WORKLOAD_SELECTOR policies
   * whose "<ns>/<name>" the control plane listed on the workload. Listed names that are missing
   * (not received yet) or of another scope add nothing.
   */
  policiesFor(workload: Workload): Authorization[] {
    const out: Authorization[] = [];
    for (const key of this.globalPolicies) out.push(this.policies.get(key)!);
    for (const key of this.namespacePolicies.get(workload.namespace) ?? []) out.push(this.policies.get(key)!);
    for (const key of workload.authorizationPolicies) {
      const policy = this.policies.get(key);
      if (policy?.scope === "WORKLOAD_SELECTOR") out.push(policy);
    }
    return out;
  }

  /**
   * The endpoint a new connection to `servicePort` of `service` should use: healthy endpoints,
   * narrowed by the service's routing preference relative to the source, round robin per service.
   */
  pickEndpoint(service: Service, servicePort: number, opts: PickOptions = {}): Endpoint | undefined {
    const candidates = applyRoutingPreference(
      this.cachedEndpoints(service, servicePort).usable,
      service.loadBalancing,
      opts,
    );
    return pickRoundRobin(this.roundRobin, serviceKey(service), candidates);
  }

  allWorkloads(): IterableIterator<Workload> {
    return this.workloads.values();
  }

  allServices(): IterableIterator<Service> {
    return this.services.values();
  }

  allPolicies(): IterableIterator<Authorization> {
    return this.policies.values();
  }

  /** JSON-friendly copy for /config_dump, sorted by key so two dumps diff cleanly. */
  snapshot(): StateSnapshot {
    const sorted = <T>(m: Map<string, T>) =>
      [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      workloads: sorted(this.workloads).map(([, w]) => workloadJson(w)),
      services: sorted(this.services).map(([key, s]) =>
        serviceJson(s, [...(this.endpointUids.get(key) ?? [])].sort()),
      ),
      policies: sorted(this.policies).map(([, p]) => authorizationJson(p)),
    };
  }

  // ---- index maintenance ----

  private addWorkload(uid: string, w: Workload): void {
    this.workloads.set(uid, w);
    for (const ip of ipKeys(w.network, w.addresses)) addToList(this.workloadsByIp, ip, uid);
    if (w.node) addTo(this.workloadsByNode, w.node, uid);
    for (const key of Object.keys(w.services)) addTo(this.endpointUids, key, uid);
  }

  private removeWorkload(uid: string): Workload | undefined {
    const w = this.workloads.get(uid);
    if (!w) return undefined;
    this.workloads.delete(uid);
    for (const ip of ipKeys(w.network, w.addresses)) removeFromList(this.workloadsByIp, ip, uid);
    if (w.node) removeFrom(this.workloadsByNode, w.node, uid);
    for (const key of Object.keys(w.services)) removeFrom(this.endpointUids, key, uid);
    return w;
  }

  private addService(key: string, s: Service): void {
    this.services.set(key, s);
    for (const a of s.addresses) {
      for (const ip of ipKeys(a.network, [a.address])) addToList(this.servicesByVip, ip, key);
    }
    addToList(this.servicesByHostname, s.hostname.toLowerCase(), key);
  }

  private removeService(key: string): boolean {
    const s = this.services.get(key);
    if (!s) return false;
    this.services.delete(key);
    for (const a of s.addresses) {
      for (const ip of ipKeys(a.network, [a.address])) removeFromList(this.servicesByVip, ip, key);
    }
    removeFromList(this.servicesByHostname, s.hostname.toLowerCase(), key);
    this.roundRobin.forget(key);
    return true;
  }

  private removePolicy(key: string): boolean {
    const p = this.policies.get(key);
    if (!p) return false;
    this.policies.delete(key);
    this.globalPolicies.delete(key);
    removeFrom(this.namespacePolicies, p.namespace, key);
    return true;
  }

  private cachedEndpoints(service: Service, servicePort: number): CachedEndpoints {
    const cacheKey = `${serviceKey(service)}\n${servicePort}`;
    const hit = this.endpointCache.get(cacheKey);
    // A caller may hold an older version of the Service (ports differ): only the same object hits.
    if (hit && hit.generation === this.generation && hit.service === service) return hit;
    const all: Endpoint[] = [];
    for (const workload of this.endpoints(service)) {
      const targetPort = targetPortFor(service, servicePort, workload);
      if (targetPort !== undefined) all.push({ workload, targetPort });
    }
    const entry = { generation: this.generation, service, all, usable: usable(all) };
    this.endpointCache.set(cacheKey, entry);
    return entry;
  }

  private changed(change: StateChange): void {
    if (!change.workloads && !change.services && !change.policies) return;
    if (change.workloads || change.services) {
      this.generation++;
      this.endpointCache.clear();
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        const report =
          this.options.onListenerError ??
          ((e: unknown) =>
            queueMicrotask(() => {
              throw e;
            }));
        report(err);
      }
    }
  }
}

function emptyChange(): StateChange {
  return { workloads: false, services: false, policies: false, removedWorkloads: [] };
}

function ipKeys(network: string, addresses: readonly Uint8Array[]): string[] {
  const out: string[] = [];
  for (const bytes of addresses) {
    const ip = ipFromBytes(bytes);
    if (ip !== undefined) out.push(networkKey(network, ip));
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
