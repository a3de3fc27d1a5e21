// The status conditions the control plane owns, as Istio's ambient mode writes them, from one
// translation: `istio.io/WaypointBound` on Services and ServiceEntries bound to a waypoint, `ZtunnelAccepted` on
// AuthorizationPolicies ztunnel enforces, `WaypointAccepted` on those that target a waypoint, and
// on HTTPRoutes and GRPCRoutes `status.parents[]` (Accepted, ResolvedRefs) as Istio's gateway
// controller writes it. Pure.

import type { Service } from "@ambient/core";
import { type KubeObject, namespaceOf, objectKey } from "@ambient/kube";
import { isWaypointPolicy } from "../translate/authorization.js";
import { GATEWAY_CONTROLLER, type RouteParentStatus, type TranslateResult } from "../translate/index.js";
import { GATEWAY_NAME_LABEL, WAYPOINT_CLASS } from "../translate/waypoints.js";

export const WAYPOINT_BOUND = "istio.io/WaypointBound";
export const ZTUNNEL_ACCEPTED = "ZtunnelAccepted";
export const WAYPOINT_ACCEPTED = "WaypointAccepted";
/** Every condition type this writer owns: one it no longer wants is removed, others are left alone. */
export const OWNED_TYPES = [WAYPOINT_BOUND, ZTUNNEL_ACCEPTED, WAYPOINT_ACCEPTED] as const;

export interface Condition {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
}

/** One `status.parents[]` entry of a route. */
export interface RouteParent {
  parentRef: RouteParentStatus["parentRef"];
  controllerName: string;
  conditions: Condition[];
}

export interface StatusTarget {
  object: KubeObject;
  /** Our conditions for it now; empty removes the ones we wrote before. */
  conditions: Condition[];
  /** Routes only: our `status.parents` entries now; empty removes the ones we wrote before. */
  parents?: RouteParent[];
}

/**
 * What one object's conditions are computed from: the translation's outputs, indexed. Built whole
 * by `desiredStatus`; the incremental tracker (tracker.ts) keeps the same inputs up to date.
 */
export interface StatusInputs {
  /** Service `ns/name` → the waypoint `ns/name` it is bound to. */
  bound: ReadonlyMap<string, string>;
  /** ServiceEntry objectKey → the waypoint `ns/name` it is bound to. */
  entryBound: ReadonlyMap<string, string>;
  /** `ns/name` of every Authorization ztunnel enforces. */
  ztunnel(): ReadonlySet<string>;
  /** objectKey → the messages of the translation's warnings about that object. */
  warnings(): ReadonlyMap<string, string[]>;
  /** `ns/name` of every waypoint Gateway. */
  gateways(): ReadonlySet<string>;
  /** Route objectKey → its parents' status (translate/gateway-routes.ts). */
  routes(): ReadonlyMap<string, readonly RouteParentStatus[]>;
  /** Every object in force by objectKey. */
  objects: ReadonlyMap<string, KubeObject>;
}

/**
 * Every Service and AuthorizationPolicy with a condition of ours now or before (carrying one of
 * our types in its status), with the conditions it should carry.
 */
export function desiredStatus(objects: readonly KubeObject[], result: TranslateResult): StatusTarget[] {
  const ztunnel = new Set(result.authorizations.map((a) => `${a.namespace}/${a.name}`));
  const warnings = warningsByObject(result);
  const gateways = waypointGateways(result);
  const inputs: StatusInputs = {
    bound: boundServices(result.services),
    entryBound: boundEntries(result.entryServices),
    ztunnel: () => ztunnel,
    warnings: () => warnings,
    gateways: () => gateways,
    routes: () => result.routeStatus,
    objects: new Map(objects.map((o) => [objectKey(o), o])),
  };
  const out: StatusTarget[] = [];
  for (const object of objects) {
    const target = statusTarget(object, inputs);
    if (target) out.push(target);
  }
  return out;
}

/** Service `ns/name` → the waypoint `ns/name` it is bound to. */
export function boundServices(services: Iterable<Service>): Map<string, string> {
  const bound = new Map<string, string>();
  for (const svc of services) {
    const waypoint = boundWaypoint(svc);
    if (waypoint) bound.set(`${svc.namespace}/${svc.name}`, waypoint);
  }
  return bound;
}

/** ServiceEntry objectKey → the waypoint it is bound to (every host of an entry shares one). */
export function boundEntries(entries: ReadonlyMap<string, readonly Service[]>): Map<string, string> {
  const bound = new Map<string, string>();
  for (const [key, services] of entries) {
    const waypoint = services[0] && boundWaypoint(services[0]);
    if (waypoint) bound.set(key, waypoint);
  }
  return bound;
}

/** The waypoint a translated Service is bound to, as Istio names it: `<namespace>/<name>`. */
export function boundWaypoint(svc: Service): string | undefined {
  const host = svc.waypoint?.hostname;
  // The waypoint's Service is named after its Gateway.
  return host ? `${host.namespace}/${host.hostname.split(".")[0]}` : undefined;
}

export function warningsByObject(result: TranslateResult): Map<string, string[]> {
  const warnings = new Map<string, string[]>();
  for (const w of result.warnings) {
    const list = warnings.get(w.object);
    if (list) list.push(w.message);
    else warnings.set(w.object, [w.message]);
  }
  return warnings;
}

export function waypointGateways(result: TranslateResult): Set<string> {
  return new Set(result.waypointConfig.gateways.map((g) => `${namespaceOf(g)}/${g.metadata.name}`));
}

/** Whether conditions of ours belong on this object at all: a Service, ServiceEntry, AuthorizationPolicy or route. */
export function ownsConditionsOn(object: KubeObject): boolean {
  return (
    isRouteObject(object) ||
    (object.kind === "Service" && object.apiVersion === "v1") ||
    (object.kind === "ServiceEntry" && object.apiVersion.startsWith("networking.istio.io/")) ||
    (object.kind === "AuthorizationPolicy" && object.apiVersion.startsWith("security.istio.io/"))
  );
}

/** The object's target: undefined when it is not ours to write, or has no condition of ours now or before. */
export function statusTarget(object: KubeObject, inputs: StatusInputs): StatusTarget | undefined {
  if (!ownsConditionsOn(object)) return undefined;
  if (isRouteObject(object)) {
    const parents = (inputs.routes().get(objectKey(object)) ?? []).map(routeParent);
    return parents.length > 0 || ownedParentsIn(object).length > 0
      ? { object, conditions: [], parents }
      : undefined;
  }
  const name = `${namespaceOf(object)}/${object.metadata.name}`;
  let conditions: Condition[];
  if (object.kind === "Service" || object.kind === "ServiceEntry") {
    const waypoint =
      object.kind === "Service" ? inputs.bound.get(name) : inputs.entryBound.get(objectKey(object));
    conditions = waypoint
      ? [
          {
            type: WAYPOINT_BOUND,
            status: "True",
            reason: "WaypointAccepted",
            message: `Successfully attached to waypoint ${waypoint}`,
          },
        ]
      : [];
  } else {
    conditions = isWaypointPolicy(object as never)
      ? [waypointAccepted(object, inputs)]
      : [ztunnelAccepted(inputs.ztunnel().has(name), inputs.warnings().get(objectKey(object)) ?? [])];
  }
  return conditions.length > 0 || ownedIn(object).length > 0 ? { object, conditions } : undefined;
}

/** The Gateway API route kinds whose status.parents this controller writes. */
const ROUTE_KINDS = new Set(["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"]);

export function isRouteObject(object: KubeObject): boolean {
  return ROUTE_KINDS.has(object.kind) && object.apiVersion.startsWith("gateway.networking.k8s.io/");
}

function routeParent(p: RouteParentStatus): RouteParent {
  return {
    parentRef: p.parentRef,
    controllerName: GATEWAY_CONTROLLER,
    conditions: [
      { type: "Accepted", ...p.accepted },
      { type: "ResolvedRefs", ...p.resolvedRefs },
    ],
  };
}

/** Our `status.parents` entries on a route as the API holds it (other controllers' are not ours). */
export function ownedParentsIn(object: KubeObject): RouteParent[] {
  const parents = (object.status as { parents?: unknown } | undefined)?.parents;
  if (!Array.isArray(parents)) return [];
  return (parents as RouteParent[]).filter((p) => p?.controllerName === GATEWAY_CONTROLLER);
}

/** Our conditions on the object as the API holds it. */
export function ownedIn(object: KubeObject): Condition[] {
  const all = ((object.status as { conditions?: unknown } | undefined)?.conditions ?? []) as Condition[];
  return Array.isArray(all) ? all.filter((c) => (OWNED_TYPES as readonly string[]).includes(c?.type)) : [];
}

function ztunnelAccepted(enforced: boolean, warnings: string[]): Condition {
  // Istio: True/Accepted "attached to ztunnel"; a policy ztunnel enforces only in part (HTTP
  // attributes dropped) stays True with reason UnsupportedValue and the reason in the message.
  if (warnings.length === 0 && enforced) {
    return { type: ZTUNNEL_ACCEPTED, status: "True", reason: "Accepted", message: "attached to ztunnel" };
  }
  return {
    type: ZTUNNEL_ACCEPTED,
    status: enforced ? "True" : "False",
    reason: "UnsupportedValue",
    message: warnings.join(" ") || "ztunnel cannot enforce this policy",
  };
}

interface TargetRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

const SERVICE_KEY = "core/Service/";
const GATEWAY_KEY = "gateway.networking.k8s.io/Gateway/";

function waypointAccepted(policy: KubeObject, inputs: StatusInputs): Condition {
  const { bound, objects } = inputs;
  const spec = (policy.spec ?? {}) as { targetRef?: TargetRef; targetRefs?: TargetRef[] };
  const refs = spec.targetRefs?.length ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
  const ns = namespaceOf(policy);
  const waypoints: string[] = [];
  const problems: string[] = [];
  for (const ref of refs) {
    const target = `${ref.namespace ?? ns}/${ref.name ?? ""}`;
    if (ref.kind === "Gateway") {
      if (inputs.gateways().has(target)) waypoints.push(target);
      else if (objects.has(`${GATEWAY_KEY}${target}`)) problems.push(`Gateway ${target} is not a waypoint`);
      else problems.push(`the Gateway ${target} was not found`);
    } else if (ref.kind === "GatewayClass") {
      if (ref.name === WAYPOINT_CLASS) waypoints.push(`every waypoint (GatewayClass ${WAYPOINT_CLASS})`);
      else problems.push(`GatewayClass ${ref.name} is not ${WAYPOINT_CLASS}`);
    } else if (ref.kind === "Service") {
      const svc = objects.get(`${SERVICE_KEY}${target}`);
      const waypoint = bound.get(target);
      if (!svc) problems.push(`the Service ${target} was not found`);
      else if (waypoint) waypoints.push(waypoint);
      else if (svc.metadata.labels?.[GATEWAY_NAME_LABEL]) waypoints.push(target);
      else problems.push(`the Service ${target} is not bound to a waypoint`);
    } else {
      problems.push(`a targetRef of kind ${ref.kind ?? "(none)"} is not supported`);
    }
  }
  if (problems.length > 0) {
    // Istio's reasons: TargetNotFound (nothing to attach to) or AncestorNotBound (not through a waypoint).
    const reason = problems.some((p) => p.includes("not bound")) ? "AncestorNotBound" : "TargetNotFound";
    return { type: WAYPOINT_ACCEPTED, status: "False", reason, message: problems.join("; ") };
  }
  return {
    type: WAYPOINT_ACCEPTED,
    status: "True",
    reason: "Accepted",
    message: `bound to ${[...new Set(waypoints)].join(", ")}`,
  };
}
