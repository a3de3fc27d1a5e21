// Local mode gives every Node and Pod its own loopback address so each component keeps its
// standard port. Manifests may set Node InternalIP and Pod status.podIP themselves; the rest are
// allocated here: node N gets 127.10.N.1 (N from 1), its pods 127.10.N.10 and up. Allocations are
// remembered, so an address never moves while the process runs.

import { isNode, isPod, type KubeObject, type Node, objectKey, type Pod } from "../model/index.js";

/** 127.10.0.0/16: clear of 127.0.0.1 and of the ranges people use for their own loopback tests. */
const PREFIX = "127.10";
const FIRST_POD_HOST = 10;
const MAX_HOST = 254;

export class AddressAllocator {
  private readonly nodeIps = new Map<string, string>();
  private readonly podIps = new Map<string, string>();

  /** Returns the objects with every Node and scheduled Pod addressed; inputs are not mutated. */
  assign(objects: readonly KubeObject[]): KubeObject[] {
    const taken = new Set<string>();
    for (const o of objects) {
      if (isNode(o)) for (const a of o.status?.addresses ?? []) taken.add(a.address);
      if (isPod(o) && o.status?.podIP) taken.add(o.status.podIP);
    }
    for (const ip of [...this.nodeIps.values(), ...this.podIps.values()]) taken.add(ip);

    const nodeIndex = new Map<string, number>();
    const nodes = objects.filter(isNode).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const out = objects.map((o) => o);
    for (const [i, node] of nodes.entries()) nodeIndex.set(node.metadata.name, i + 1);

    return out.map((o) => {
      if (isNode(o) && !internalIp(o)) return this.addressNode(o, nodeIndex.get(o.metadata.name) ?? 1, taken);
      if (isPod(o) && !o.status?.podIP && o.spec?.nodeName && !o.spec.hostNetwork) {
        return this.addressPod(o, nodeIndex.get(o.spec.nodeName) ?? 250, taken);
      }
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

  private free(subnet: string, from: number, taken: Set<string>): string {
    for (let host = from; host <= MAX_HOST; host++) {
      const ip = `${subnet}.${host}`;
      if (!taken.has(ip)) return ip;
    }
    throw new Error(`no free local address left in ${subnet}.0/24`);
  }
}

export function internalIp(node: Node): string | undefined {
  return node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
}
