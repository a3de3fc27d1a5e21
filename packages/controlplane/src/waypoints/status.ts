// A deployed Gateway's status (class istio-waypoint or istio), from what the cluster shows of its
// Service and Deployment: Accepted at once, Programmed once the Service has its cluster IP and a
// proxy pod is ready (before that False with reason AddressNotAssigned and a message naming what is
// missing), `status.addresses` the Service's load-balancer ingress if it has one (a LoadBalancer
// Service, an ingress gateway's), else its cluster IP. Pure; the reconcile loop writes it only when
// it changed.

import type { Gateway, KubeObject, Service } from "@ambient/kube";
import { isIngressGateway } from "../translate/ingress.js";
import { deployedName } from "./desired.js";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface GatewayStatus {
  conditions: Condition[];
  addresses?: { type: string; value: string }[];
}

export interface Observed {
  service: Service | undefined;
  deployment: KubeObject | undefined;
  clusterDomain: string;
  /** The time a condition that changes now is stamped with. */
  now: string;
}

export function gatewayStatus(gateway: Gateway, o: Observed): GatewayStatus {
  const name = deployedName(gateway);
  const namespace = gateway.metadata.namespace ?? "default";
  const generation = gateway.metadata.generation as number | undefined;
  const previous = ((gateway.status as GatewayStatus | undefined)?.conditions ?? []) as Condition[];
  const condition = (c: Omit<Condition, "lastTransitionTime" | "observedGeneration">): Condition => {
    const before = previous.find((p) => p.type === c.type);
    return {
      ...c,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      // Kubernetes' convention: the time the status last changed, not the time we last wrote.
      lastTransitionTime:
        before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : o.now,
    };
  };

  const clusterIP = o.service?.spec?.clusterIP;
  const ips = (o.service?.spec?.clusterIPs ?? (clusterIP ? [clusterIP] : [])).filter(
    (ip) => ip && ip !== "None",
  );
  // Clients outside the cluster reach a LoadBalancer at its ingress; until the cloud assigns one,
  // the cluster IP is what the Gateway has.
  const external = loadBalancerIngress(o.service);
  const addresses = external.length > 0 ? external : ips.map((value) => ({ type: "IPAddress", value }));
  const ready = readyReplicas(o.deployment);
  const hostname = `${name}.${namespace}.svc.${o.clusterDomain}`;
  const listenerPorts = (gateway.spec?.listeners ?? [])
    .map((l) => l.port)
    .filter((p) => typeof p === "number");
  const assigned = listenerPorts.map((p) => `${hostname}:${p}`).join(",") || hostname;

  let programmed: Omit<Condition, "lastTransitionTime" | "observedGeneration">;
  if (!o.service) {
    programmed = notAssigned(`waiting for the Service ${namespace}/${name} to be created`);
  } else if (ips.length === 0) {
    programmed = notAssigned(`the Service ${namespace}/${name} has no cluster IP yet`);
  } else if (!o.deployment) {
    programmed = notAssigned(`waiting for the Deployment ${namespace}/${name} to be created`);
  } else if (ready < 1) {
    const wanted = (o.deployment.spec as { replicas?: number } | undefined)?.replicas ?? 1;
    programmed = notAssigned(
      `no ${isIngressGateway(gateway) ? "gateway" : "waypoint"} pod is ready yet (Deployment ${namespace}/${name}: ${ready} of ${wanted} ready)`,
    );
  } else {
    programmed = {
      type: "Programmed",
      status: "True",
      reason: "Programmed",
      message: `Resource programmed, assigned to service(s) ${assigned}`,
    };
  }
  return {
    conditions: [
      condition({ type: "Accepted", status: "True", reason: "Accepted", message: "Resource accepted" }),
      condition(programmed),
    ],
    ...(addresses.length > 0 ? { addresses } : {}),
  };
}

function notAssigned(message: string): Omit<Condition, "lastTransitionTime" | "observedGeneration"> {
  return { type: "Programmed", status: "False", reason: "AddressNotAssigned", message };
}

/** `status.loadBalancer.ingress` as Gateway addresses: an IP, or a hostname (AWS's load balancers). */
function loadBalancerIngress(service: Service | undefined): { type: string; value: string }[] {
  const ingress = (service?.status as { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } })
    ?.loadBalancer?.ingress;
  return (ingress ?? []).flatMap((i) =>
    i.ip ? [{ type: "IPAddress", value: i.ip }] : i.hostname ? [{ type: "Hostname", value: i.hostname }] : [],
  );
}

function readyReplicas(deployment: KubeObject | undefined): number {
  const n = (deployment?.status as { readyReplicas?: unknown } | undefined)?.readyReplicas;
  return typeof n === "number" ? n : 0;
}

/** Whether `next` says something `current` does not (times aside: they only move with a change). */
export function statusChanged(current: unknown, next: GatewayStatus): boolean {
  const c = (current ?? {}) as GatewayStatus;
  const strip = (conds: Condition[] | undefined) =>
    (conds ?? [])
      .map(({ lastTransitionTime: _, ...rest }) => rest)
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  return (
    JSON.stringify(strip(c.conditions)) !== JSON.stringify(strip(next.conditions)) ||
    JSON.stringify(c.addresses ?? []) !== JSON.stringify(next.addresses ?? [])
  );
}
