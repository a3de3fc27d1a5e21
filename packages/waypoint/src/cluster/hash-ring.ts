// The consistent-hash ring behind DestinationRule `consistentHash`: a stable string hash (the same
// key maps to the same point in every process and release) and a ring of endpoint points looked up
// by binary search, as Envoy's ring_hash does.

import type { EndpointInfo } from "./endpoint.js";

// Envoy sizes its ring from minimum_ring_size / endpoint count, so adding or removing one endpoint
// changes every endpoint's share of points and moves some keys between endpoints that stayed. A
// fixed count per endpoint moves only the keys of the endpoints that changed; 128 points keeps each
// endpoint's share within ~10% of fair.
export const RING_POINTS_PER_ENDPOINT = 128;

/**
 * FNV-1a over the UTF-8 bytes, then murmur3's fmix32 so that keys differing in one character land
 * far apart on the ring. Unsigned 32-bit.
 */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    // Non-ASCII: feed the UTF-16 unit as two bytes; stable, which is all a ring needs.
    h = Math.imul(h ^ (c & 0xff), 0x01000193);
    c >>>= 8;
    h = Math.imul(h ^ c, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 16 hex digits from two seeded 32-bit hashes: the shape of Envoy's generated cookie values. */
export function hash64Hex(text: string): string {
  return (
    hash32(text, 0).toString(16).padStart(8, "0") + hash32(text, 0x9e3779b9).toString(16).padStart(8, "0")
  );
}

/** Envoy hashes the endpoint address, so a pod keeps its points for as long as it keeps its IP. */
export function endpointKey(endpoint: EndpointInfo): string {
  return `${endpoint.address}:${endpoint.port}`;
}

export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: Uint32Array;

  constructor(
    readonly endpoints: readonly EndpointInfo[],
    pointsPerEndpoint = RING_POINTS_PER_ENDPOINT,
  ) {
    const entries: { hash: number; owner: number; key: string }[] = [];
    endpoints.forEach((endpoint, owner) => {
      const key = endpointKey(endpoint);
      for (let i = 0; i < pointsPerEndpoint; i++) entries.push({ hash: hash32(`${key}_${i}`), owner, key });
    });
    // Ties broken by address so that the ring does not depend on the order endpoints arrive in.
    entries.sort((a, b) => a.hash - b.hash || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.points = Uint32Array.from(entries, (e) => e.hash);
    this.owners = Uint32Array.from(entries, (e) => e.owner);
  }

  /** The endpoint owning the first point at or after `hash`, wrapping around. */
  lookup(hash: number): EndpointInfo | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return this.endpoints[this.owners[lo === n ? 0 : lo]!];
  }
}
