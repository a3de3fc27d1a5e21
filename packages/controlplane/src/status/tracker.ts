// The desired status conditions, kept up to date from each translation's change instead of being
// derived again from every object (conditions.ts `desiredStatus`, the one definition this must
// agree with: status.test.ts compares the two after random edits). A pod edit, the common case,
// touches no Service or policy and so recomputes nothing here.
//
// What each target reads, and so what makes it stale:
//   - a Service: its own object, and the waypoint its translated Service is bound to. The
//     Translator hands back the same Service output for a Service it did not recompute, so a new
//     output object is the signal;
//   - a ServiceEntry: likewise, its own object and the waypoint its Services are bound to (the
//     Translator hands back the same Services array for an entry it did not recompute);
//   - a ztunnel AuthorizationPolicy: its own object, its own translation's output and warnings
//     (which change only with the object, or in a mesh-wide change);
//   - a waypoint AuthorizationPolicy (targetRefs): its own object, the waypoint Gateways, and the
//     Services it names (which may be in any namespace): recomputed, all of them, whenever a Service
//     or its binding changed;
//   - an HTTPRoute or GRPCRoute: its own object, the Services and waypoints its parentRefs and
//     backendRefs name: every route is recomputed whenever any route, Service or binding changed
//     (routes are few; exactness beats cleverness);
//   - anything else (a Gateway, a PeerAuthentication, a root-namespace policy: `scope.all`), or a
//     translation this tracker did not see: everything, from scratch.

import type { Service } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { isWaypointPolicy } from "../translate/authorization.js";
import type { TranslateResult, TranslationChange } from "../translate/index.js";
import { keyOf } from "../translate/snapshot.js";
import {
  boundEntries,
  boundServices,
  boundWaypoint,
  desiredStatus,
  isRouteObject,
  ownsConditionsOn,
  type StatusInputs,
  type StatusTarget,
  statusTarget,
  warningsByObject,
  waypointGateways,
} from "./conditions.js";

export class StatusTracker {
  private generation = 0;
  /** objectKey → its target, for the Services and policies that have one. */
  private targets = new Map<string, StatusTarget>();
  /** Service `ns/name` → the translated Service its target was computed from. */
  private services = new Map<string, Service>();
  /** Service `ns/name` → the waypoint it is bound to (the `bound` input). */
  private bound = new Map<string, string>();
  /** ServiceEntry objectKey → its Services in the last translation, and the waypoint it is bound to. */
  private entries: ReadonlyMap<string, readonly Service[]> = new Map();
  private entryBound = new Map<string, string>();
  /** objectKeys of the policies that target waypoints. */
  private waypointPolicies = new Set<string>();
  /** objectKeys of the HTTPRoutes and GRPCRoutes. */
  private routes = new Set<string>();
  private list: StatusTarget[] = [];

  /** The desired targets after this translation (the same array when nothing changed). */
  update(change: TranslationChange, result: TranslateResult): readonly StatusTarget[] {
    const incremental =
      change.keys !== undefined && !change.scope.all && change.generation === this.generation + 1;
    this.generation = change.generation;
    if (!incremental) this.rebuild(change, result);
    else if (this.patch(change, change.keys!, result)) this.list = [...this.targets.values()];
    return this.list;
  }

  private rebuild(change: TranslationChange, result: TranslateResult): void {
    const objects = [...change.objects.values()];
    this.targets = new Map();
    for (const target of desiredStatus(objects, result)) this.targets.set(keyOf(target.object), target);
    this.services = new Map(result.services.map((s) => [`${s.namespace}/${s.name}`, s]));
    this.bound = boundServices(result.services);
    this.entries = result.entryServices;
    this.entryBound = boundEntries(result.entryServices);
    this.waypointPolicies = new Set();
    this.routes = new Set();
    for (const [key, o] of change.objects) {
      if (isWaypointPolicyObject(o)) this.waypointPolicies.add(key);
      if (isRouteObject(o)) this.routes.add(key);
    }
    this.list = [...this.targets.values()];
  }

  /** Recomputes the stale targets; true when any target changed. */
  private patch(change: TranslationChange, keys: ReadonlySet<string>, result: TranslateResult): boolean {
    const stale = new Set<string>();
    let servicesMoved = false;
    let routesMoved = false;
    for (const key of keys) {
      if (ROUTE_KEYS.some((prefix) => key.startsWith(prefix))) routesMoved = true;
      // Any Service added, changed or deleted can change what a waypoint policy's targetRefs find.
      if (key.startsWith(SERVICE_KEY)) servicesMoved = true;
      const object = change.objects.get(key);
      if (object ? ownsConditionsOn(object) : this.targets.has(key)) stale.add(key);
    }
    // A Service recomputed by the translation (its namespace changed, say): its binding may differ.
    const seen = new Set<string>();
    for (const svc of result.services) {
      const name = `${svc.namespace}/${svc.name}`;
      seen.add(name);
      if (this.services.get(name) === svc) continue;
      this.services.set(name, svc);
      const waypoint = boundWaypoint(svc);
      if (waypoint) this.bound.set(name, waypoint);
      else this.bound.delete(name);
      stale.add(`${SERVICE_KEY}${name}`);
      servicesMoved = true;
    }
    if (this.services.size !== seen.size) {
      for (const name of this.services.keys()) {
        if (seen.has(name)) continue;
        this.services.delete(name);
        this.bound.delete(name);
      }
    }
    if (servicesMoved) for (const key of this.waypointPolicies) stale.add(key);
    if (servicesMoved || routesMoved) for (const key of this.routes) stale.add(key);
    // A ServiceEntry recomputed by the translation: its binding may differ. Few, so compared whole.
    for (const [key, services] of result.entryServices) {
      if (this.entries.get(key) === services) continue;
      const waypoint = services[0] && boundWaypoint(services[0]);
      if (waypoint) this.entryBound.set(key, waypoint);
      else this.entryBound.delete(key);
      stale.add(key);
    }
    for (const key of this.entries.keys()) if (!result.entryServices.has(key)) this.entryBound.delete(key);
    this.entries = result.entryServices;
    if (stale.size === 0) return false;

    const inputs = lazyInputs(this.bound, this.entryBound, change, result);
    let changed = false;
    for (const key of stale) {
      const object = change.objects.get(key);
      this.waypointPolicies.delete(key);
      if (object && isWaypointPolicyObject(object)) this.waypointPolicies.add(key);
      this.routes.delete(key);
      if (object && isRouteObject(object)) this.routes.add(key);
      const target = object ? statusTarget(object, inputs) : undefined;
      const before = this.targets.get(key);
      if (target) this.targets.set(key, target);
      else this.targets.delete(key);
      changed ||= before !== undefined || target !== undefined;
    }
    return changed;
  }
}

const SERVICE_KEY = "core/Service/";
const ROUTE_KEYS = ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"].map(
  (k) => `gateway.networking.k8s.io/${k}/`,
);

function isWaypointPolicyObject(o: KubeObject): boolean {
  return o.kind === "AuthorizationPolicy" && ownsConditionsOn(o) && isWaypointPolicy(o as never);
}

/** The inputs, with the ones only policies read built on first use (a Service edit needs none). */
function lazyInputs(
  bound: ReadonlyMap<string, string>,
  entryBound: ReadonlyMap<string, string>,
  change: TranslationChange,
  result: TranslateResult,
): StatusInputs {
  let ztunnel: Set<string> | undefined;
  let warnings: Map<string, string[]> | undefined;
  let gateways: Set<string> | undefined;
  return {
    bound,
    entryBound,
    ztunnel: () => {
      ztunnel ??= new Set(result.authorizations.map((a) => `${a.namespace}/${a.name}`));
      return ztunnel;
    },
    warnings: () => {
      warnings ??= warningsByObject(result);
      return warnings;
    },
    gateways: () => {
      gateways ??= waypointGateways(result);
      return gateways;
    },
    routes: () => result.routeStatus,
    objects: change.objects,
  };
}
