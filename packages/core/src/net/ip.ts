// IP addresses and CIDR blocks, once for the whole project: the workload xDS carries 4- or 16-byte
// arrays, manifests and policies carry text, sockets report text. Text is parsed as Go's net/netip
// reads it (what Istio validates with): IPv4 octets without leading zeros, IPv6 with at most one
// "::" and an optional dotted IPv4 tail. Peer addresses from sockets and X-Forwarded-For are read
// more leniently (brackets, a zone, IPv4-mapped IPv6 as its IPv4 address), and printed in one
// canonical text (RFC 5952, as ztunnel's `to_canonical`) so an index lookup by a socket's address
// finds what xDS announced.

import { SocketAddress } from "node:net";

/** A prefix: `address` (4 or 16 bytes, host bits cleared) and its length in bits. */
export interface Cidr {
  address: Uint8Array;
  length: number;
}

const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DECIMAL.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  // A dotted IPv4 tail may only end the address, so only the last half may carry one.
  const groups = (half: string, mayEndInV4: boolean): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (mayEndInV4 && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIPv4(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (HEX_GROUP.test(part)) {
        out.push(Number.parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!, !compressed);
  const tail = compressed ? groups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (compressed ? total > 7 : total !== 8) return undefined;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * The 4- or 16-byte form of an address written in a manifest or policy; undefined when it is not
 * one. Strict: no zone, no brackets, no surrounding space. `::ffff:a.b.c.d` stays 16 bytes.
 */
export function parseIp(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 64) return undefined;
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

/**
 * An address as a socket or X-Forwarded-For reports it: brackets (`[::1]`) and a zone (`%eth0`,
 * which no policy can name) are dropped, and an IPv4-mapped IPv6 address comes back as its 4
 * bytes, because a dual-stack listener reports IPv4 peers that way and policies name them by IPv4.
 */
export function parsePeerIp(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 64) return undefined;
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const bytes = parseIp(s);
  return bytes && isV4Mapped(bytes) ? bytes.slice(12) : bytes;
}

export function isIp(text: unknown): boolean {
  return typeof text === "string" && parseIp(text) !== undefined;
}

/** Canonical text of a 4- or 16-byte address (IPv4-mapped unwrapped); undefined for any other length. */
export function ipFromBytes(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) return undefined;
  if (isV4Mapped(bytes)) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressIpv6(groups.join(":"));
}

/** `ipFromBytes`, with "" for bytes that are no address (xDS fields a validator already checked). */
export function ipText(bytes: Uint8Array): string {
  return ipFromBytes(bytes) ?? "";
}

/** Canonical text of an address a socket or a person wrote; undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const bytes = parsePeerIp(text);
  return bytes && ipFromBytes(bytes);
}

/**
 * `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128, as Istio's translation treats it).
 * Host bits are cleared, so `10.1.2.3/8` and `10.0.0.0/8` are the same block (Envoy's CidrRange and
 * ztunnel's IpNet also ignore them).
 */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.indexOf("/");
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  if (slash < 0) return { address, length: address.length * 8 };
  const bits = text.slice(slash + 1);
  if (!PREFIX_LENGTH.test(bits)) return undefined;
  return cidrFromBytes(address, Number(bits));
}

export function isCidrOrIp(text: unknown): boolean {
  return typeof text === "string" && parseCidr(text) !== undefined;
}

/**
 * A prefix from the xDS form (bytes + length); undefined when malformed (not 4 or 16 bytes, or a
 * length outside the family's range), which ztunnel drops the same way. A 16-byte mapped prefix
 * stays IPv6: it never contains a (canonical, IPv4) peer address, as in ztunnel and Envoy.
 */
export function cidrFromBytes(address: Uint8Array, length: number): Cidr | undefined {
  if (!(address instanceof Uint8Array) || (address.length !== 4 && address.length !== 16)) return undefined;
  if (!Number.isInteger(length) || length < 0 || length > address.length * 8) return undefined;
  const out = new Uint8Array(address.length);
  for (let i = 0; i < address.length; i++) {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    out[i] = address[i]! & (0xff << (8 - keep)) & 0xff;
  }
  return { address: out, length };
}

/** True when `ip` (4 or 16 bytes) lies in `cidr`; families never match across. */
export function cidrContains(cidr: Cidr, ip: Uint8Array): boolean {
  if (cidr.address.length !== ip.length) return false;
  let remaining = cidr.length;
  for (let i = 0; remaining > 0; i++, remaining -= 8) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if ((cidr.address[i]! & mask) !== (ip[i]! & mask)) return false;
  }
  return true;
}

/** "10.0.0.0/8"-style text of a prefix, for config dumps. */
export function cidrText(address: Uint8Array, length: number): string {
  return `${ipFromBytes(address) ?? `<${address.length} bytes>`}/${length}`;
}

/** Index key of an address on a network: "<network>/<ip>", the form Istio prints too. */
export function networkKey(network: string, ip: string): string {
  return `${network}/${ip}`;
}

/** `host:port`, with IPv6 hosts in brackets as URLs and HTTP/2 authorities need them. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

// SocketAddress formats with the platform's inet_ntop: the RFC 5952 form, lowercase, longest zero
// run compressed. Writing that rule by hand is where IPv6 printers usually go wrong.
function compressIpv6(text: string): string {
  return new SocketAddress({ address: text, family: "ipv6" }).address;
}
