// ServiceEntry and WorkloadEntry → istio.workload Services and Workloads, as Istio's ambient index
// builds them:
//   - each host of a ServiceEntry is one Service (named after the entry, hostname = the host),
//     with the entry's addresses as VIPs, its ports, subject alt names and waypoint;
//   - its endpoints are Workloads: each inline endpoint (STATIC, or DNS with endpoints), or for
//     DNS without endpoints one workload per host whose `hostname` the proxy resolves when it
//     connects; `workloadSelector` instead picks the namespace's Pods and WorkloadEntries, whose
//     own Workloads then list the entry's hosts among their services (workloads.ts);
//   - `resolution: NONE` has no endpoints at all: the Service's load balancing is PASSTHROUGH,
//     so ztunnel sends the connection to the address the client dialed (or to the waypoint);
//   - a WorkloadEntry is a Workload of its own, selected by Services and ServiceEntries by its
//     labels like a Pod.
// Workload uids follow Istio: `<cluster>/networking.istio.io/ServiceEntry/<ns>/<name>/<address>`
// and `<cluster>/networking.istio.io/WorkloadEntry/<ns>/<name>`.

import type {
  AppProtocol,
  GatewayAddress,
  Locality,
  NetworkAddress,
  Port,
  PortList,
  Workload,
  Service as XdsService,
} from "@ambient/core";
import { parseIp } from "@ambient/core";
import {
  type KubeObject,
  namespaceOf,
  type ServiceEntry,
  type ServiceEntryPort,
  type WorkloadEntry,
  type WorkloadEntrySpec,
} from "@ambient/kube";
import { compareStrings, labelsOf, type TranslateContext } from "./context.js";

const GROUP = "networking.istio.io";
/** Istio's label on an endpoint or WorkloadEntry that speaks HBONE (a VM running ztunnel). */
const TUNNEL_LABEL = "networking.istio.io/tunnel";

/** The waypoint a ServiceEntry's traffic goes through (waypoints.ts); none by default. */
export type EntryWaypointLookup = (entry: ServiceEntry) => GatewayAddress | undefined;

/** What one ServiceEntry turns into. */
export interface EntryOutput {
  services: XdsService[];
  workloads: Workload[];
}

/** The lookups a WorkloadEntry's Workload needs; the same ones a Pod's does (index.ts). */
export interface EntryWorkloadLookups {
  servicesFor(entry: WorkloadEntry): Record<string, PortList>;
  policiesFor(entry: WorkloadEntry): string[];
  waypointFor(entry: WorkloadEntry, serviceAccount: string): GatewayAddress | undefined;
}

export function resolutionOf(entry: ServiceEntry): string {
  return entry.spec?.resolution ?? "NONE";
}

/** The hosts of an entry, lowercased as DNS compares them, without duplicates. */
export function hostsOf(entry: ServiceEntry): string[] {
  return [...new Set((entry.spec?.hosts ?? []).map((h) => h.toLowerCase()))];
}

/** A ServiceEntry's Services and inline-endpoint Workloads. */
export function translateServiceEntry(
  entry: ServiceEntry,
  ctx: TranslateContext,
  waypointFor: EntryWaypointLookup,
): EntryOutput {
  const spec = entry.spec ?? {};
  const namespace = namespaceOf(entry);
  const resolution = resolutionOf(entry);
  const hosts = hostsOf(entry);
  const ports = (spec.ports ?? []).map(entryPort);
  const vips = entryVips(entry, ctx);
  const waypoint = waypointFor(entry);
  const services = hosts.map((hostname) => {
    const svc: XdsService = {
      name: entry.metadata.name,
      namespace,
      hostname,
      addresses: vips,
      ports,
      subjectAltNames: [...(spec.subjectAltNames ?? [])],
    };
    if (waypoint) svc.waypoint = waypoint;
    // Istio: a NONE entry is a passthrough service; the client's own destination is the endpoint.
    if (resolution === "NONE") svc.loadBalancing = { routingPreference: [], mode: "PASSTHROUGH" };
    return svc;
  });
  if (resolution === "NONE" && vips.length === 0 && !waypoint) {
    ctx.warn(
      entry,
      "resolution NONE without addresses: clients reach these hosts by their own DNS answers, which ztunnel passes through untouched (give the entry addresses, or a waypoint, to apply policy by service)",
    );
  }

  const workloads: Workload[] = [];
  if (resolution === "NONE" || spec.workloadSelector) return { services, workloads };
  const endpoints = spec.endpoints ?? [];
  if (endpoints.length > 0) {
    for (const endpoint of endpoints) {
      const address = endpoint.address ?? "";
      workloads.push(
        endpointWorkload(
          entry,
          endpoint,
          `${ctx.options.clusterId}/${GROUP}/ServiceEntry/${namespace}/${entry.metadata.name}/${address}`,
          ctx,
          entryServices(entry, endpoint),
        ),
      );
    }
  } else if (resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") {
    // No endpoints: each host is its own endpoint, resolved by the proxy when it connects.
    for (const host of hosts) {
      workloads.push(
        endpointWorkload(
          entry,
          { address: host },
          `${ctx.options.clusterId}/${GROUP}/ServiceEntry/${namespace}/${entry.metadata.name}/${host}`,
          ctx,
          {
            [`${namespace}/${host}`]: {
              ports: ports.map((p) => ({ servicePort: p.servicePort, targetPort: p.targetPort })),
            },
          },
        ),
      );
    }
  } else {
    ctx.warn(entry, "resolution STATIC without endpoints or a workloadSelector: the hosts have no endpoints");
  }
  workloads.sort((a, b) => compareStrings(a.uid, b.uid));
  return { services, workloads };
}

/** A WorkloadEntry's Workload, with the Services and ServiceEntries that select it. */
export function translateWorkloadEntry(
  entry: WorkloadEntry,
  ctx: TranslateContext,
  lookups: EntryWorkloadLookups,
): Workload | undefined {
  const spec = entry.spec ?? {};
  if (!spec.address) return undefined; // validation requires one; a hand-made object may not
  const namespace = namespaceOf(entry);
  const uid = `${ctx.options.clusterId}/${GROUP}/WorkloadEntry/${namespace}/${entry.metadata.name}`;
  const workload = endpointWorkload(entry, spec, uid, ctx, lookups.servicesFor(entry));
  workload.authorizationPolicies = lookups.policiesFor(entry);
  const waypoint = lookups.waypointFor(entry, workload.serviceAccount);
  if (waypoint) workload.waypoint = waypoint;
  return workload;
}

/** A WorkloadEntry's labels for selection: its spec's, over its metadata's (Istio merges both). */
export function workloadEntryLabels(entry: WorkloadEntry): Record<string, string> {
  return { ...labelsOf(entry), ...(entry.spec?.labels ?? {}) };
}

/**
 * The service ports a selected workload (a Pod or WorkloadEntry) serves for each host of `entry`:
 * the workload's own mapping for the port name (WorkloadEntry `ports`), else the entry's
 * targetPort, else the port number.
 */
export function entryServices(entry: ServiceEntry, endpoint?: WorkloadEntrySpec): Record<string, PortList> {
  const namespace = namespaceOf(entry);
  const ports = (entry.spec?.ports ?? []).map((p) => ({
    servicePort: p.number,
    targetPort: (p.name ? endpoint?.ports?.[p.name] : undefined) ?? p.targetPort ?? p.number,
  }));
  const out: Record<string, PortList> = {};
  for (const host of hostsOf(entry)) out[`${namespace}/${host}`] = { ports: ports.map((p) => ({ ...p })) };
  return out;
}

function endpointWorkload(
  owner: KubeObject,
  endpoint: WorkloadEntrySpec,
  uid: string,
  ctx: TranslateContext,
  services: Record<string, PortList>,
): Workload {
  const { options } = ctx;
  const address = endpoint.address ?? "";
  const ip = parseIp(address);
  const labels =
    owner.kind === "WorkloadEntry"
      ? workloadEntryLabels(owner as WorkloadEntry)
      : { ...(endpoint.labels ?? {}) };
  const workload: Workload = {
    uid,
    name: owner.metadata.name,
    namespace: namespaceOf(owner),
    addresses: ip ? [ip] : [],
    network: endpoint.network ?? options.network,
    tunnelProtocol: labels[TUNNEL_LABEL] === "http" ? "HBONE" : "NONE",
    trustDomain: options.trustDomain,
    serviceAccount: endpoint.serviceAccount || "default",
    node: "",
    canonicalName:
      labels["service.istio.io/canonical-name"] ||
      labels["app.kubernetes.io/name"] ||
      labels.app ||
      owner.metadata.name,
    canonicalRevision:
      labels["service.istio.io/canonical-revision"] ||
      labels["app.kubernetes.io/version"] ||
      labels.version ||
      "latest",
    workloadType: "POD",
    workloadName: owner.metadata.name,
    authorizationPolicies: [],
    status: "HEALTHY",
    clusterId: options.clusterId,
    // An address that is not an IP is a DNS name (validation allows that only where Istio does).
    hostname: ip ? "" : address.toLowerCase(),
    services,
  };
  const locality = parseLocality(endpoint.locality);
  if (locality) workload.locality = locality;
  return workload;
}

function entryPort(port: ServiceEntryPort): Port {
  const out: Port = { servicePort: port.number, targetPort: port.targetPort ?? port.number };
  const appProtocol = protocolOf(port.protocol);
  if (appProtocol !== "UNKNOWN") out.appProtocol = appProtocol;
  return out;
}

/** Istio's port protocols (upper case in ServiceEntries); only the HTTP flavours matter to ztunnel. */
function protocolOf(protocol: string | undefined): AppProtocol {
  switch ((protocol ?? "").toUpperCase()) {
    case "HTTP":
      return "HTTP11";
    case "HTTP2":
      return "HTTP2";
    case "GRPC":
      return "GRPC";
    default:
      return "UNKNOWN";
  }
}

/** The entry's addresses that are single IPs; a CIDR range cannot be a VIP and is left out. */
function entryVips(entry: ServiceEntry, ctx: TranslateContext): NetworkAddress[] {
  const out: NetworkAddress[] = [];
  const seen = new Set<string>();
  for (const raw of entry.spec?.addresses ?? []) {
    const [ip, prefix] = raw.split("/");
    const bytes = ip ? parseIp(ip) : undefined;
    const full = bytes && (prefix === undefined || Number(prefix) === bytes.length * 8);
    if (!bytes || !full) {
      ctx.warn(
        entry,
        `address ${raw} is a range, not one IP: ztunnel cannot use it as the service's address`,
      );
      continue;
    }
    if (seen.has(ip!)) continue;
    seen.add(ip!);
    out.push({ network: ctx.options.network, address: bytes });
  }
  return out;
}

/** "region/zone/subzone", any suffix left out. */
function parseLocality(raw: string | undefined): Locality | undefined {
  if (!raw) return undefined;
  const [region = "", zone = "", subzone = ""] = raw.split("/");
  return { region, zone, subzone };
}
