// VIPs for ServiceEntry hosts that have none, as Istio auto-allocates them for DNS proxying: from
// the class E range 240.240.0.0/16, never a .0 or .255 address, for every non-wildcard host of an
// entry without `addresses` whose resolution is not NONE (a passthrough entry has no endpoints to
// send a VIP's traffic to). With them ztunnel's DNS proxy answers those hosts and ztunnel routes
// connections to the address like any VIP. IPv4 only: Istio adds 2001:2::/48 only for dual stack.

import { ipText, type NetworkAddress, parseIp, type Service } from "@ambient/core";

const BASE = [240, 240] as const;
const SLOTS = 1 << 16;

/** One host of one entry that needs an address, identified by `<ns>/<entry name>/<host>`. */
export interface AllocationRequest {
  key: string;
  service: Service;
}

/**
 * Allocates across one whole translation, so two hosts never share an address and none takes an
 * address some Service or ServiceEntry already has. Each key's address is a hash of the key (FNV-1a,
 * as Istio's first allocator), probed forward on collision in key order. The result depends on the
 * objects only, never on history, so a warm Translator gives what a fresh one gives; the price is
 * that a new entry whose key sorts first can move an older one it collides with (odds about n/65k).
 */
export class EntryAddressAllocator {
  /** The output object per input object and address, so unchanged services keep their identity (the publisher diffs by identity). */
  private made = new WeakMap<Service, { ip: string; out: Service }>();

  allocate(
    requests: readonly AllocationRequest[],
    taken: ReadonlySet<string>,
    network: string,
  ): Map<string, Service> {
    const used = new Set(taken);
    const assigned = new Map<string, string>();
    const sorted = [...requests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const { key } of sorted) {
      let slot = fnv1a(key) % SLOTS;
      for (let tries = 0; tries < SLOTS; tries++, slot = (slot + 1) % SLOTS) {
        const ip = slotIp(slot);
        if (ip === undefined || used.has(ip)) continue;
        used.add(ip);
        assigned.set(key, ip);
        break;
      }
    }
    const out = new Map<string, Service>();
    for (const { key, service } of requests) {
      const ip = assigned.get(key);
      if (ip === undefined) continue; // 240.240.0.0/16 exhausted: the host stays without a VIP.
      const cached = this.made.get(service);
      if (cached?.ip === ip) {
        out.set(key, cached.out);
        continue;
      }
      const address: NetworkAddress = { network, address: parseIp(ip)! };
      const made = { ...service, addresses: [address] };
      this.made.set(service, { ip, out: made });
      out.set(key, made);
    }
    return out;
  }
}

/** The slot's address, or undefined for the .0 and .255 ones Istio skips. */
function slotIp(slot: number): string | undefined {
  const low = slot & 0xff;
  if (low === 0 || low === 0xff) return undefined;
  return `${BASE[0]}.${BASE[1]}.${slot >> 8}.${low}`;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Every address some service already has, as text: allocation must not reuse one. */
export function addressesInUse(services: Iterable<Service>): Set<string> {
  const out = new Set<string>();
  for (const s of services) for (const a of s.addresses) out.add(ipText(a.address));
  return out;
}
