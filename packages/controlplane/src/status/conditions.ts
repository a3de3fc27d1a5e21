// The status conditions the control plane owns, as Istio's ambient mode writes them, from one
// translation: `istio.io/WaypointBound` on Services bound to a waypoint, `ZtunnelAccepted` on
// AuthorizationPolicies ztunnel enforces, `WaypointAccepted` on those that target a waypoint. Pure.

import { type KubeObject, namespaceOf, objectKey } from "@ambient/kube";
import { isWaypointPolicy } from "../translate/authorization.js";
import type { TranslateResult } from "../translate/index.js";
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

export interface StatusTarget {
  object: KubeObject;
  /** Our conditions for it now; empty removes the ones we wrote before. */
  conditions: Condition[];
}

/**
 * Every Service and AuthorizationPolicy with a condition of ours now or before (carrying one of
 * our types in its status), with the conditions it should carry.
 */
export function desiredStatus(objects: readonly KubeObject[], result: TranslateResult): StatusTarget[] {
  const bound = new Map<string, string>();
  for (const svc of result.services) {
    const host = svc.waypoint?.hostname;
    if (!host) continue;
    // Istio names the waypoint as <namespace>/<name>; its Service is named after the Gateway.
    bound.set(`${svc.namespace}/${svc.name}`, `${host.namespace}/${host.hostname.split(".")[0]}`);
  }
  const ztunnel = new Set(result.authorizations.map((a) => `${a.namespace}/${a.name}`));
  const warnings = new Map<string, string[]>();
  for (const w of result.warnings) warnings.set(w.object, [...(warnings.get(w.object) ?? []), w.message]);
  const gateways = new Set(result.waypointConfig.gateways.map((g) => `${namespaceOf(g)}/${g.metadata.name}`));
  const byKey = new Map(objects.map((o) => [`${o.kind}/${namespaceOf(o)}/${o.metadata.name}`, o]));

  const out: StatusTarget[] = [];
  for (const object of objects) {
    const name = `${namespaceOf(object)}/${object.metadata.name}`;
    let conditions: Condition[];
    if (object.kind === "Service" && object.apiVersion === "v1") {
      const waypoint = bound.get(name);
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
    } else if (object.kind === "AuthorizationPolicy" && object.apiVersion.startsWith("security.istio.io/")) {
      conditions = isWaypointPolicy(object as never)
        ? [waypointAccepted(object, gateways, bound, byKey)]
        : [ztunnelAccepted(ztunnel.has(name), warnings.get(objectKey(object)) ?? [])];
    } else continue;
    if (conditions.length > 0 || ownedIn(object).length > 0) out.push({ object, conditions });
  }
  return out;
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

function waypointAccepted(
  policy: KubeObject,
  gateways: Set<string>,
  bound: Map<string, string>,
  byKey: Map<string, KubeObject>,
): Condition {
  const spec = (policy.spec ?? {}) as { targetRef?: TargetRef; targetRefs?: TargetRef[] };
  const refs = spec.targetRefs?.length ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
  const ns = namespaceOf(policy);
  const waypoints: string[] = [];
  const problems: string[] = [];
  for (const ref of refs) {
    const target = `${ref.namespace ?? ns}/${ref.name ?? ""}`;
    if (ref.kind === "Gateway") {
      if (gateways.has(target)) waypoints.push(target);
      else if (byKey.has(`Gateway/${target}`)) problems.push(`Gateway ${target} is not a waypoint`);
      else problems.push(`the Gateway ${target} was not found`);
    } else if (ref.kind === "GatewayClass") {
      if (ref.name === WAYPOINT_CLASS) waypoints.push(`every waypoint (GatewayClass ${WAYPOINT_CLASS})`);
      else problems.push(`GatewayClass ${ref.name} is not ${WAYPOINT_CLASS}`);
    } else if (ref.kind === "Service") {
      const svc = byKey.get(`Service/${target}`);
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
