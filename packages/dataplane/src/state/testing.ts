// Builders of complete xDS resources for tests of ztunnel's state, xDS handling and proxy paths:
// every field filled with what our control plane would send, overridable one at a time. Nothing on
// a production path imports this module.

import {
  type Address,
  type Authorization,
  emptyMatch,
  type Match,
  parseIp,
  type Service,
  type Workload,
} from "@ambient/core";

export function ip(text: string): Uint8Array {
  const bytes = parseIp(text);
  if (!bytes) throw new Error(`not an IP address: ${text}`);
  return bytes;
}

/** A HEALTHY HBONE pod `<ns>/<name>` in cluster "Kubernetes" with uid `Kubernetes//Pod/<ns>/<name>`. */
export function testWorkload(
  p: Partial<Omit<Workload, "addresses">> & { name: string; namespace?: string; ips?: string[] },
): Workload {
  const { ips, ...rest } = p;
  const namespace = p.namespace ?? "default";
  return {
    uid: `Kubernetes//Pod/${namespace}/${p.name}`,
    namespace,
    addresses: (ips ?? []).map(ip),
    network: "",
    tunnelProtocol: "HBONE",
    trustDomain: "cluster.local",
    serviceAccount: "default",
    node: "",
    canonicalName: p.name,
    canonicalRevision: "latest",
    workloadType: "POD",
    workloadName: p.name,
    authorizationPolicies: [],
    status: "HEALTHY",
    clusterId: "Kubernetes",
    hostname: "",
    services: {},
    ...rest,
  };
}

/** Service `<name>.<ns>.svc.cluster.local` with the given VIPs and ports (target = service port). */
export function testService(
  p: Partial<Omit<Service, "addresses" | "ports">> & {
    name: string;
    namespace?: string;
    vips?: string[];
    ports?: (number | { servicePort: number; targetPort: number })[];
  },
): Service {
  const { vips, ports, ...rest } = p;
  const namespace = p.namespace ?? "default";
  return {
    namespace,
    hostname: `${p.name}.${namespace}.svc.cluster.local`,
    addresses: (vips ?? []).map((v) => ({ network: "", address: ip(v) })),
    ports: (ports ?? []).map((port) =>
      typeof port === "number" ? { servicePort: port, targetPort: port } : port,
    ),
    subjectAltNames: [],
    ...rest,
  };
}

/** An Authorization with one rule of one clause holding `match` (everything when omitted). */
export function testPolicy(
  p: Partial<Authorization> & { name: string; namespace?: string; match?: Partial<Match> },
): Authorization {
  const { match, ...rest } = p;
  return {
    namespace: "default",
    scope: "WORKLOAD_SELECTOR",
    action: "ALLOW",
    rules: [{ clauses: match ? [{ matches: [{ ...emptyMatch(), ...match }] }] : [] }],
    dryRun: false,
    ...rest,
  };
}

/** The xDS resource name and Address of each, as a Delta ADS batch. */
export function addresses(...items: (Workload | Service)[]): Map<string, Address> {
  const out = new Map<string, Address>();
  for (const item of items) {
    if ("uid" in item) out.set(item.uid, { workload: item });
    else out.set(`${item.namespace}/${item.hostname}`, { service: item });
  }
  return out;
}

export function policies(...items: Authorization[]): Map<string, Authorization> {
  return new Map(items.map((a) => [`${a.namespace}/${a.name}`, a]));
}
