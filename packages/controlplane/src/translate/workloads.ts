// Pod → istio.workload.Workload, as Istio's ambient index builds it: identity, addresses,
// canonical names, owner-derived workload name and type, readiness, the services that select the
// pod (with target ports resolved against its containers), the policies that apply to it and its
// waypoint.

import type { GatewayAddress, Locality, PortList, Workload, WorkloadType } from "@ambient/core";
import { parseIp } from "@ambient/core";
import {
  isAmbientEnrolled,
  namespaceOf,
  type OwnerReference,
  type Pod,
  type Service,
  type ServiceEntry,
} from "@ambient/kube";
import { compareStrings, labelsOf, serviceHostname, type TranslateContext } from "./context.js";
import { entryServices } from "./service-entries.js";
import type { Snapshot } from "./snapshot.js";

const NETWORK_LABEL = "topology.istio.io/network";

/** Looks up what applies to a pod; built once per translation (see index.ts). */
export interface WorkloadLookups {
  /** Services in the pod's namespace whose non-empty selector matches its labels. */
  servicesFor(pod: Pod): Service[];
  /** ServiceEntries in the pod's namespace whose workloadSelector matches its labels. */
  entriesFor(pod: Pod): ServiceEntry[];
  /** Sorted `<ns>/<name>` of the WORKLOAD_SELECTOR Authorizations that apply to the pod. */
  policiesFor(pod: Pod): string[];
  /** The waypoint that receives traffic addressed to the pod itself (waypoints.ts), if any. */
  waypointFor(pod: Pod, serviceAccount: string): GatewayAddress | undefined;
}

/** One pod's Workload; undefined for pods that are not workloads (host network, finished, no IP). */
export function translatePod(
  pod: Pod,
  snapshot: Pick<Snapshot, "namespaces" | "nodes">,
  lookups: WorkloadLookups,
  ctx: TranslateContext,
): Workload | undefined {
  const spec = pod.spec ?? {};
  const status = pod.status ?? {};
  // Host-network pods use the node's address, which ztunnel cannot tell apart from the node's
  // other traffic; finished pods have given their IP back. Istio skips both.
  if (spec.hostNetwork === true) return undefined;
  if (status.phase === "Succeeded" || status.phase === "Failed") return undefined;
  const addresses = podAddresses(pod);
  if (addresses.length === 0) return undefined;

  const { options } = ctx;
  const namespace = namespaceOf(pod);
  const name = pod.metadata.name;
  const labels = labelsOf(pod);
  const nsObject = snapshot.namespaces.get(namespace);
  const owner = workloadNameAndType(pod);
  const services: Record<string, PortList> = {};
  for (const svc of [...lookups.servicesFor(pod)].sort((a, b) =>
    compareStrings(a.metadata.name, b.metadata.name),
  )) {
    services[`${namespace}/${serviceHostname(svc.metadata.name, namespace)}`] = {
      ports: resolvePorts(svc, pod),
    };
  }
  for (const entry of [...lookups.entriesFor(pod)].sort((a, b) =>
    compareStrings(a.metadata.name, b.metadata.name),
  )) {
    // A Service of the same hostname was listed first and keeps its ports.
    for (const [key, ports] of Object.entries(entryServices(entry))) services[key] ??= ports;
  }

  const workload: Workload = {
    uid: `${options.clusterId}//Pod/${namespace}/${name}`,
    name,
    namespace,
    addresses,
    network: labels[NETWORK_LABEL] ?? nsObject?.metadata.labels?.[NETWORK_LABEL] ?? options.network,
    tunnelProtocol: isAmbientEnrolled(pod, nsObject) ? "HBONE" : "NONE",
    trustDomain: options.trustDomain,
    serviceAccount: spec.serviceAccountName || spec.serviceAccount || "default",
    node: spec.nodeName ?? "",
    canonicalName:
      labels["service.istio.io/canonical-name"] ||
      labels["app.kubernetes.io/name"] ||
      labels.app ||
      owner.name,
    canonicalRevision:
      labels["service.istio.io/canonical-revision"] ||
      labels["app.kubernetes.io/version"] ||
      labels.version ||
      "latest",
    workloadType: owner.type,
    workloadName: owner.name,
    authorizationPolicies: lookups.policiesFor(pod),
    status: isReady(pod) ? "HEALTHY" : "UNHEALTHY",
    clusterId: options.clusterId,
    hostname: "",
    services,
  };
  const waypoint = lookups.waypointFor(pod, workload.serviceAccount);
  if (waypoint) workload.waypoint = waypoint;
  const locality = nodeLocality(snapshot, spec.nodeName);
  if (locality) workload.locality = locality;
  return workload;
}

/** status.podIP first, then the other podIPs (dual stack), as 4- or 16-byte addresses. */
function podAddresses(pod: Pod): Uint8Array[] {
  const status = pod.status ?? {};
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const ip of [status.podIP, ...(status.podIPs ?? []).map((p) => p?.ip)]) {
    if (!ip || seen.has(ip)) continue;
    seen.add(ip);
    const bytes = parseIp(ip);
    if (bytes) out.push(bytes);
  }
  return out;
}

/**
 * Readiness as Kubernetes defines it: phase Running and condition Ready True. Local manifests
 * usually leave out status.conditions; a Running (or phase-less) pod that lists no conditions
 * at all is taken as ready, otherwise every hand-written mesh would have no healthy endpoints.
 */
function isReady(pod: Pod): boolean {
  const status = pod.status ?? {};
  if (status.phase !== undefined && status.phase !== "Running") return false;
  const conditions = status.conditions;
  if (!conditions || conditions.length === 0) return true;
  return conditions.some((c) => c?.type === "Ready" && c.status === "True");
}

// Kubernetes' pod-template-hash alphabet (rand.SafeEncodeString: no vowels, no 0/1/3).
const POD_TEMPLATE_HASH = /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/;
// Istio's rule: a Job named `<cronjob>-<8 to 10 digit schedule time>` was made by that CronJob.
const CRONJOB_JOB_NAME = /^(.+)-\d{8,10}$/;

/** The controlling owner, rolled up the way Istio does (ReplicaSet → Deployment, Job → CronJob). */
function workloadNameAndType(pod: Pod): { name: string; type: WorkloadType } {
  const owners = pod.metadata.ownerReferences ?? [];
  const owner: OwnerReference | undefined = owners.find((o) => o?.controller) ?? owners[0];
  if (!owner) return { name: pod.metadata.name, type: "POD" };
  switch (owner.kind) {
    case "ReplicaSet": {
      const hash = labelsOf(pod)["pod-template-hash"];
      if (hash && owner.name.endsWith(`-${hash}`)) {
        return { name: owner.name.slice(0, -(hash.length + 1)), type: "DEPLOYMENT" };
      }
      const dash = owner.name.lastIndexOf("-");
      if (dash > 0 && POD_TEMPLATE_HASH.test(owner.name.slice(dash + 1))) {
        return { name: owner.name.slice(0, dash), type: "DEPLOYMENT" };
      }
      return { name: owner.name, type: "DEPLOYMENT" };
    }
    case "Job": {
      const cron = CRONJOB_JOB_NAME.exec(owner.name);
      return cron ? { name: cron[1]!, type: "CRONJOB" } : { name: owner.name, type: "JOB" };
    }
    case "CronJob":
      return { name: owner.name, type: "CRONJOB" };
    default:
      // Istio's enum has no StatefulSet or DaemonSet: everything else long-lived is a "deployment".
      return { name: owner.name, type: "DEPLOYMENT" };
  }
}

/**
 * Service ports with the target resolved for this pod: a number is itself, a name is the pod's
 * container port of that name (a pod without it does not serve that port, as kube-proxy would
 * skip it), an absent target is the service port.
 */
function resolvePorts(svc: Service, pod: Pod): PortList["ports"] {
  const out: PortList["ports"] = [];
  for (const port of svc.spec?.ports ?? []) {
    const target = port.targetPort;
    if (typeof target === "number") out.push({ servicePort: port.port, targetPort: target });
    else if (target === undefined) out.push({ servicePort: port.port, targetPort: port.port });
    else {
      const resolved = namedContainerPort(pod, target);
      if (resolved !== undefined) out.push({ servicePort: port.port, targetPort: resolved });
    }
  }
  return out;
}

function namedContainerPort(pod: Pod, name: string): number | undefined {
  for (const container of pod.spec?.containers ?? []) {
    for (const port of container?.ports ?? []) {
      if (port?.name === name) return port.containerPort;
    }
  }
  return undefined;
}

function nodeLocality(snapshot: Pick<Snapshot, "nodes">, nodeName: string | undefined): Locality | undefined {
  const node = nodeName ? snapshot.nodes.get(nodeName) : undefined;
  if (!node) return undefined;
  const labels = labelsOf(node);
  const region = labels["topology.kubernetes.io/region"] ?? "";
  const zone = labels["topology.kubernetes.io/zone"] ?? "";
  const subzone = labels["topology.istio.io/subzone"] ?? "";
  return region || zone || subzone ? { region, zone, subzone } : undefined;
}
