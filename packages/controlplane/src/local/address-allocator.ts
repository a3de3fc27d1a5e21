// Local mode gives every Node and Pod its own loopback address so each component keeps its
// standard port. Manifests may set Node InternalIP, Pod status.podIP and Service clusterIP
// themselves; the rest are allocated here: node N gets 127.10.N.1 (N from 1), its pods 127.10.N.10
// and up, Services a VIP from 127.10.100.1 up (as the API server would give a ClusterIP).
// Allocations are remembered, so an address never moves while the process runs.

import {
  isNode,
  isPod,
  isService,
  type KubeObject,
  type Node,
  objectKey,
  type Pod,
  type Service,
} from "@ambient/kube";

/** 127.10.0.0/16: clear of 127.0.0.1 and of the ranges people use for their own loopback tests. */
const PREFIX = "127.10";
const FIRST_POD_HOST = 10;
const MAX_HOST = 254;
/** VIPs: 127.10.100.0/24 onwards (the examples' hand-written VIPs sit there too), ten /24s. */
const FIRST_VIP_SUBNET = 100;
const VIP_SUBNETS = 10;

export class AddressAllocator {
  private readonly nodeIps = new Map<string, string>();
  private readonly podIps = new Map<string, string>();
  private readonly serviceIps = new Map<string, string>();

  /** Returns the objects with every Node, scheduled Pod and Service addressed; inputs are not mutated. */
  assign(objects: readonly KubeObject[]): KubeObject[] {
    const taken = new Set<string>();
    for (const o of objects) {
      if (isNode(o)) for (const a of o.status?.addresses ?? []) taken.add(a.address);
      if (isPod(o) && o.status?.podIP) taken.add(o.status.podIP);
      if (isService(o))
        for (const ip of [o.spec?.clusterIP, ...(o.spec?.clusterIPs ?? [])]) if (ip) taken.add(ip);
    }
    // Addresses given in the manifests, before our own remembered ones are added: a VIP we handed
    // out earlier that a manifest now claims for another Service must move, or two would share it.
    const given = new Set(taken);
    for (const ip of [...this.nodeIps.values(), ...this.podIps.values(), ...this.serviceIps.values()]) {
      taken.add(ip);
    }

    const nodeIndex = new Map<string, number>();
    const nodes = objects.filter(isNode).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const out = objects.map((o) => o);
    for (const [i, node] of nodes.entries()) nodeIndex.set(node.metadata.name, i + 1);

    return out.map((o) => {
      if (isNode(o) && !internalIp(o)) return this.addressNode(o, nodeIndex.get(o.metadata.name) ?? 1, taken);
      if (isPod(o) && !o.status?.podIP && o.spec?.nodeName && !o.spec.hostNetwork) {
        return this.addressPod(o, nodeIndex.get(o.spec.nodeName) ?? 250, taken);
      }
      if (isService(o) && needsVip(o)) return this.addressService(o, taken, given);
      return o;
    });
  }

  private addressNode(node: Node, index: number, taken: Set<string>): Node {
    const key = node.metadata.name;
    let ip = this.nodeIps.get(key);
    if (!ip) {
      ip = `${PREFIX}.${index}.1`;
      if (taken.has(ip)) ip = this.free(`${PREFIX}.${index}`, 2, taken);
      this.nodeIps.set(key, ip);
      taken.add(ip);
    }
    const addresses = [...(node.status?.addresses ?? []), { type: "InternalIP", address: ip }];
    return { ...node, status: { ...(node.status ?? {}), addresses } };
  }

  private addressPod(pod: Pod, nodeIndex: number, taken: Set<string>): Pod {
    const key = objectKey(pod);
    let ip = this.podIps.get(key);
    if (!ip) {
      ip = this.free(`${PREFIX}.${nodeIndex}`, FIRST_POD_HOST, taken);
      this.podIps.set(key, ip);
      taken.add(ip);
    }
    return { ...pod, status: { ...(pod.status ?? {}), podIP: ip, phase: pod.status?.phase ?? "Running" } };
  }

  private addressService(svc: Service, taken: Set<string>, given: ReadonlySet<string>): Service {
    const key = objectKey(svc);
    let ip = this.serviceIps.get(key);
    if (!ip || given.has(ip)) {
      ip = this.freeVip(taken);
      this.serviceIps.set(key, ip);
      taken.add(ip);
    }
    return { ...svc, spec: { ...(svc.spec ?? {}), clusterIP: ip, clusterIPs: [ip] } };
  }

  private freeVip(taken: Set<string>): string {
    for (let subnet = FIRST_VIP_SUBNET; subnet < FIRST_VIP_SUBNET + VIP_SUBNETS; subnet++) {
      for (let host = 1; host <= MAX_HOST; host++) {
        const ip = `${PREFIX}.${subnet}.${host}`;
        if (!taken.has(ip)) return ip;
      }
    }
    throw new Error(
      `no free local service address left in ${PREFIX}.${FIRST_VIP_SUBNET}-${FIRST_VIP_SUBNET + VIP_SUBNETS - 1}.x`,
    );
  }

  private free(subnet: string, from: number, taken: Set<string>): string {
    for (let host = from; host <= MAX_HOST; host++) {
      const ip = `${subnet}.${host}`;
      if (!taken.has(ip)) return ip;
    }
    throw new Error(`no free local address left in ${subnet}.0/24`);
  }
}

/** A Service the API server would give a ClusterIP: not headless ("None"), not an ExternalName. */
function needsVip(svc: Service): boolean {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return false;
  return !spec.clusterIP && (spec.clusterIPs ?? []).length === 0;
}

export function internalIp(node: Node): string | undefined {
  return node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
}
