// Waypoint attachment: which waypoint, if any, receives the traffic addressed to each Service and
// each Pod, by Istio's labels. A waypoint is a Gateway of class istio-waypoint; the answer is the
// GatewayAddress that Service.waypoint / Workload.waypoint carry to ztunnel.
//
// Precedence, as Istio resolves it: the object's own `istio.io/use-waypoint` label (value `none`
// opts out), then, for workloads only, a waypoint annotated `istio.io/for-service-account` for the
// pod's service account, then the namespace's label. `istio.io/use-waypoint-namespace`, read from
// the same object as the use-waypoint label, names the waypoint's namespace.
//
// Where Ambient differs from Istio, on purpose: a named waypoint that is missing, is not an
// istio-waypoint Gateway, refuses this kind of traffic (`istio.io/waypoint-for`) or does not admit
// the object's namespace (listener allowedRoutes) is a warning AND the GatewayAddress is still set
// to that waypoint. Istio leaves the address out, so the traffic goes straight to the workloads and
// bypasses the L7 policy the user asked the waypoint to enforce. We fail closed instead: ztunnel
// finds no ready waypoint instance and answers 503, or the waypoint refuses traffic it is not for.
// Only a namespace-wide label is allowed to not apply to a kind silently (a service waypoint named
// by the namespace is not meant for pod-IP traffic), as that is the label's normal use.

import type { GatewayAddress } from "@ambient/core";
import {
  type Gateway,
  type KubeObject,
  type LabelSelector,
  matchesLabelSelector,
  type Namespace,
  namespaceOf,
  type Pod,
  type Service,
  type ServiceEntry,
  type WorkloadEntry,
} from "@ambient/kube";
import { annotationsOf, labelsOf, serviceHostname, type TranslateContext } from "./context.js";
import type { Snapshot } from "./snapshot.js";

export const WAYPOINT_CLASS = "istio-waypoint";
export const USE_WAYPOINT_LABEL = "istio.io/use-waypoint";
export const USE_WAYPOINT_NAMESPACE_LABEL = "istio.io/use-waypoint-namespace";
export const WAYPOINT_FOR_LABEL = "istio.io/waypoint-for";
export const FOR_SERVICE_ACCOUNT_ANNOTATION = "istio.io/for-service-account";
/** Put by Istio's deployment controller on a Gateway's pods and Service. */
export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
export const GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name";
/** On Services Istio's controller created for a waypoint: Istio never gives them a waypoint. */
export const GATEWAY_MANAGED_LABEL = "gateway.istio.io/managed";
export const MESH_CONTROLLER = "istio.io-mesh-controller";
/** The waypoint terminates HBONE on the same port as ztunnel's inbound (DESIGN.md section 3). */
export const WAYPOINT_HBONE_PORT = 15008;
/** Kubernetes puts this label on every Namespace; local manifests rarely do, so we supply it. */
const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

type TrafficType = "service" | "workload" | "all" | "none";
type TrafficKind = "service" | "workload";
const TRAFFIC_TYPES: readonly string[] = ["service", "workload", "all", "none"];

interface Waypoint {
  gateway: Gateway;
  key: string;
  trafficType: TrafficType;
  /** May an object in this namespace use the waypoint (the mesh listener's allowedRoutes)? */
  admits(namespace: string): boolean;
}

type UseWaypoint = { name: string; namespace: string } | "none" | undefined;

export function isWaypointGateway(obj: Gateway): boolean {
  return obj.spec?.gatewayClassName === WAYPOINT_CLASS;
}

/** The address ztunnel sends a waypoint's traffic to: the waypoint's Service, HBONE on 15008. */
export function waypointAddress(name: string, namespace: string): GatewayAddress {
  return {
    hostname: { namespace, hostname: serviceHostname(name, namespace) },
    hboneMtlsPort: WAYPOINT_HBONE_PORT,
  };
}

export class WaypointIndex {
  private readonly gateways = new Map<string, Gateway>();
  private readonly waypoints = new Map<string, Waypoint>();
  /** "<namespace>/<service account>" → the per-service-account waypoint. */
  private readonly perServiceAccount = new Map<string, Waypoint>();
  private readonly namespaces: ReadonlyMap<string, Namespace>;

  constructor(
    snapshot: Pick<Snapshot, "gateways" | "namespaces">,
    private readonly ctx: TranslateContext,
  ) {
    this.namespaces = snapshot.namespaces;
    // The snapshot is in key order, so the first of two per-SA waypoints is always the same one.
    for (const gateway of snapshot.gateways) {
      const key = `${namespaceOf(gateway)}/${gateway.metadata.name}`;
      this.gateways.set(key, gateway);
      if (!isWaypointGateway(gateway)) continue;
      const waypoint = this.waypoint(gateway, key);
      this.waypoints.set(key, waypoint);
      const sa = annotationsOf(gateway)[FOR_SERVICE_ACCOUNT_ANNOTATION];
      if (sa) this.addPerServiceAccount(waypoint, sa);
    }
  }

  /** The istio-waypoint Gateways, in key order: the waypoints' own L7 resources. */
  waypointGateways(): Gateway[] {
    return [...this.waypoints.values()].map((w) => w.gateway);
  }

  /** A Service's or a ServiceEntry's waypoint (both carry service traffic, labelled alike). */
  forService(svc: Service | ServiceEntry): GatewayAddress | undefined {
    if (svc.kind === "Service" && this.isWaypointService(svc as Service)) return undefined;
    const own = useWaypoint(svc);
    if (own === "none") return undefined;
    if (own) return this.resolve(svc, "service", own, true);
    return this.fromNamespace(svc, "service");
  }

  /** A Pod's or a WorkloadEntry's waypoint, for traffic addressed to the workload itself. */
  forWorkload(pod: Pod | WorkloadEntry, serviceAccount: string): GatewayAddress | undefined {
    if (pod.kind === "Pod" && this.isWaypointPod(pod as Pod)) return undefined;
    const own = useWaypoint(pod);
    if (own === "none") return undefined;
    if (own) return this.resolve(pod, "workload", own, true);
    const perSa = this.perServiceAccount.get(`${namespaceOf(pod)}/${serviceAccount}`);
    if (perSa) return waypointAddress(perSa.gateway.metadata.name, namespaceOf(perSa.gateway));
    return this.fromNamespace(pod, "workload");
  }

  /** A waypoint's own pod (Istio: an "instance" of the waypoint) never goes through a waypoint. */
  isWaypointPod(pod: Pod): boolean {
    const gateway = labelsOf(pod)[GATEWAY_NAME_LABEL];
    return gateway !== undefined && this.waypoints.has(`${namespaceOf(pod)}/${gateway}`);
  }

  /** Nor does a waypoint's own Service: its traffic would loop back into the waypoint. */
  isWaypointService(svc: Service): boolean {
    const labels = labelsOf(svc);
    if (labels[GATEWAY_MANAGED_LABEL] === MESH_CONTROLLER) return true;
    const ns = namespaceOf(svc);
    for (const gateway of [labels[GATEWAY_NAME_LABEL], svc.spec?.selector?.[GATEWAY_NAME_LABEL]]) {
      if (gateway !== undefined && this.waypoints.has(`${ns}/${gateway}`)) return true;
    }
    return false;
  }

  private fromNamespace(obj: KubeObject, kind: TrafficKind): GatewayAddress | undefined {
    const ns = this.namespaces.get(namespaceOf(obj));
    const inherited = ns ? useWaypoint(ns, namespaceOf(obj)) : undefined;
    if (!inherited || inherited === "none") return undefined;
    return this.resolve(obj, kind, inherited, false);
  }

  /**
   * The GatewayAddress for a waypoint named by a label. `explicit`: the label is on the object
   * itself, so every problem fails closed; from the namespace, a waypoint that does not take this
   * kind of traffic simply does not apply (a missing one is assumed to take Istio's default, service).
   */
  private resolve(
    obj: KubeObject,
    kind: TrafficKind,
    ref: { name: string; namespace: string },
    explicit: boolean,
  ): GatewayAddress | undefined {
    const key = `${ref.namespace}/${ref.name}`;
    const waypoint = this.waypoints.get(key);
    let problem: string | undefined;
    if (!waypoint) {
      if (!explicit && kind !== "service") return undefined;
      const gateway = this.gateways.get(key);
      problem = gateway
        ? `is a Gateway of class ${JSON.stringify(gateway.spec?.gatewayClassName ?? "")}, not ${WAYPOINT_CLASS}`
        : "does not exist";
    } else if (!takes(waypoint.trafficType, kind)) {
      if (!explicit) return undefined;
      problem = `is for ${waypoint.trafficType} traffic (${WAYPOINT_FOR_LABEL}), not ${kind} traffic`;
    } else if (!waypoint.admits(namespaceOf(obj))) {
      problem = `does not admit namespace ${namespaceOf(obj)} (allowedRoutes of its HBONE listener)`;
    }
    if (problem) {
      const where = explicit
        ? `its ${USE_WAYPOINT_LABEL} label`
        : `the ${USE_WAYPOINT_LABEL} label of its namespace`;
      this.ctx.warn(
        obj,
        `waypoint ${key}, named by ${where}, ${problem}; its ${kind} traffic is still sent to that waypoint and refused (fail closed) rather than let through without the waypoint's policy`,
      );
    }
    return waypointAddress(ref.name, ref.namespace);
  }

  private waypoint(gateway: Gateway, key: string): Waypoint {
    const raw = labelsOf(gateway)[WAYPOINT_FOR_LABEL];
    let trafficType: TrafficType;
    if (raw === undefined) {
      // Istio's default is service; a per-service-account waypoint exists to catch its workloads.
      trafficType = annotationsOf(gateway)[FOR_SERVICE_ACCOUNT_ANNOTATION] ? "workload" : "service";
    } else if (TRAFFIC_TYPES.includes(raw)) {
      trafficType = raw as TrafficType;
    } else {
      // Istio compares the value as is, so an unknown one matches no traffic.
      this.ctx.warn(
        gateway,
        `${WAYPOINT_FOR_LABEL}: ${JSON.stringify(raw)} is not one of ${TRAFFIC_TYPES.join(", ")}; the waypoint takes no traffic`,
      );
      trafficType = "none";
    }
    const ns = namespaceOf(gateway);
    const routes = allowedNamespaces(gateway);
    return {
      gateway,
      key,
      trafficType,
      admits: (namespace) => {
        if (routes.from === "All") return true;
        if (routes.from === "Selector") {
          const nsObject = this.namespaces.get(namespace);
          const labels = { ...(nsObject ? labelsOf(nsObject) : {}) };
          labels[NAMESPACE_NAME_LABEL] ??= namespace;
          return matchesLabelSelector(routes.selector, labels);
        }
        return namespace === ns;
      },
    };
  }

  private addPerServiceAccount(waypoint: Waypoint, sa: string): void {
    const gateway = waypoint.gateway;
    if (!takes(waypoint.trafficType, "workload")) {
      this.ctx.warn(
        gateway,
        `${FOR_SERVICE_ACCOUNT_ANNOTATION}: ${sa} has no effect: the waypoint is for ${waypoint.trafficType} traffic (${WAYPOINT_FOR_LABEL}), not workload traffic`,
      );
      return;
    }
    const key = `${namespaceOf(gateway)}/${sa}`;
    const first = this.perServiceAccount.get(key);
    if (first) {
      this.ctx.warn(
        gateway,
        `waypoint ${first.key} already serves service account ${key}; this one is not used for it`,
      );
      return;
    }
    this.perServiceAccount.set(key, waypoint);
  }
}

/** The object's use-waypoint label, its namespace from use-waypoint-namespace or `defaultNamespace`. */
function useWaypoint(obj: KubeObject, defaultNamespace = namespaceOf(obj)): UseWaypoint {
  const labels = labelsOf(obj);
  const name = labels[USE_WAYPOINT_LABEL];
  if (name === undefined || name === "") return undefined;
  // Istio reserves "none": a waypoint of that name can never be used.
  if (name === "none") return "none";
  return { name, namespace: labels[USE_WAYPOINT_NAMESPACE_LABEL] || defaultNamespace };
}

function takes(type: TrafficType, kind: TrafficKind): boolean {
  return type === "all" || type === kind;
}

// ---- allowedRoutes of the waypoint's HBONE listener ----

type AllowedNamespaces = { from: "Same" | "All" } | { from: "Selector"; selector: LabelSelector };

/**
 * Istio reads the HBONE listener on 15008 (validation guarantees one). Gateway API's default is
 * `from: Same`: without allowedRoutes only the waypoint's own namespace may use it.
 */
function allowedNamespaces(gateway: Gateway): AllowedNamespaces {
  const listener = gateway.spec?.listeners?.find(
    (l) => l.protocol === "HBONE" && l.port === WAYPOINT_HBONE_PORT,
  );
  const namespaces = (
    listener?.["allowedRoutes"] as { namespaces?: { from?: string; selector?: LabelSelector } }
  )?.namespaces;
  if (namespaces?.from === "All") return { from: "All" };
  if (namespaces?.from === "Selector") return { from: "Selector", selector: namespaces.selector ?? {} };
  return { from: "Same" };
}
