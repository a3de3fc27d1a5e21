// Addresses and CIDRs as 32-bit words, so a policy's source/destination IP check is a few integer
// ANDs per block instead of string or bigint work on every connection. Addresses are canonical
// (an IPv4-mapped IPv6 address is its IPv4 address), as ztunnel canonicalizes peer addresses.

import type { AddressMatch } from "@ambient/core";

/** An address: one word for IPv4, four for IPv6, each stored as a signed int32 (`x | 0`). */
export interface Ip {
  readonly family: 4 | 6;
  readonly words: readonly number[];
}

/** A prefix with its host bits cleared, in the same word form as `Ip`. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly words: readonly number[];
  readonly masks: readonly number[];
}

const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4Word(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let word = 0;
  for (const part of parts) {
    if (!DECIMAL.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    word = (word << 8) | n;
  }
  return word | 0;
}

/** The eight 16-bit groups of an IPv6 address (with an optional dotted IPv4 tail). */
function parseIPv6Groups(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string, last: boolean): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (last && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIPv4Word(part);
        if (v4 === undefined) return undefined;
        out.push((v4 >>> 16) & 0xffff, v4 & 0xffff);
      } else if (HEX_GROUP.test(part)) {
        out.push(Number.parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const compressed = halves.length === 2;
  const head = groups(halves[0]!, !compressed);
  const tail = compressed ? groups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (compressed ? total > 7 : total !== 8) return undefined;
  return [...head, ...new Array<number>(8 - total).fill(0), ...tail];
}

/** True for ::ffff:a.b.c.d, whose first 80 bits are zero and next 16 are ones. */
function isMapped(words: readonly number[]): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

/**
 * An address as Node reports it (`socket.remoteAddress`): dotted IPv4, or IPv6 with an optional
 * zone (dropped: policies cannot name one). IPv4-mapped IPv6 comes back as IPv4 because a
 * dual-stack listener reports IPv4 peers that way, and policies name them by their IPv4 address.
 */
export function parseIp(text: string): Ip | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 64) return undefined;
  if (!text.includes(":")) {
    const word = parseIPv4Word(text);
    return word === undefined ? undefined : { family: 4, words: [word] };
  }
  const zone = text.indexOf("%");
  const groups = parseIPv6Groups(zone >= 0 ? text.slice(0, zone) : text);
  if (!groups) return undefined;
  const words = [0, 1, 2, 3].map((i) => (groups[2 * i]! << 16) | groups[2 * i + 1]! | 0);
  if (isMapped(words)) return { family: 4, words: [words[3]!] };
  return { family: 6, words };
}

/** Bits `[32*i, 32*i+32)` of a prefix of `length` bits, as a signed int32 mask. */
function wordMask(length: number, i: number): number {
  const bits = Math.max(0, Math.min(32, length - 32 * i));
  // `x << 32` is `x << 0` in JavaScript, so an empty mask needs its own case.
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) | 0;
}

/**
 * The xDS AddressMatch as a Cidr, or undefined when it is malformed (not 4 or 16 bytes, or a
 * length outside the family's range); ztunnel drops such entries the same way. A 16-byte mapped
 * prefix stays IPv6, as in ztunnel: it never contains a (canonical, IPv4) connection address.
 */
export function compileCidr(match: AddressMatch): Cidr | undefined {
  const bytes = match.address;
  const length = match.length;
  if (!(bytes instanceof Uint8Array) || (bytes.length !== 4 && bytes.length !== 16)) return undefined;
  const family = bytes.length === 4 ? 4 : 6;
  if (!Number.isInteger(length) || length < 0 || length > bytes.length * 8) return undefined;
  const words: number[] = [];
  const masks: number[] = [];
  for (let i = 0; i < bytes.length / 4; i++) {
    const word =
      (bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!;
    const mask = wordMask(length, i);
    masks.push(mask);
    // ztunnel's IpNet also ignores host bits (10.1.2.3/8 contains 10.9.9.9).
    words.push(word & mask);
  }
  return { family, words, masks };
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  if (cidr.family !== ip.family) return false;
  const { words, masks } = cidr;
  for (let i = 0; i < words.length; i++) {
    if ((ip.words[i]! & masks[i]!) !== words[i]) return false;
  }
  return true;
}
