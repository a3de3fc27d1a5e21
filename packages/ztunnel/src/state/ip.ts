// IP addresses as ztunnel's indexes key them: xDS carries 4- or 16-byte arrays, sockets report
// text. Both are brought to one canonical text (RFC 5952 for IPv6, IPv4-mapped IPv6 unwrapped, as
// ztunnel's `to_canonical`), so a lookup by a socket's address finds what xDS announced.

import { isIPv4, isIPv6, SocketAddress } from "node:net";

/** Canonical text of a 4- or 16-byte address; undefined for any other length. */
export function ipFromBytes(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) return undefined;
  if (isV4Mapped(bytes)) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressIpv6(groups.join(":"));
}

/**
 * Canonical text of an address written as text (dotted IPv4 or any IPv6 spelling, including
 * `::ffff:a.b.c.d` from a dual-stack socket); undefined when it is not an IP address.
 */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text;
  if (!isIPv6(text)) return undefined;
  const compressed = compressIpv6(text);
  // inet_ntop prints IPv4-mapped addresses as ::ffff:a.b.c.d.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(compressed);
  return mapped ? mapped[1] : compressed;
}

/** The 4- or 16-byte form of an IP address written as text; undefined when it is not one. */
export function ipToBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return Uint8Array.from(text.split(".").map(Number));
  if (!isIPv6(text) || text.includes("%")) return undefined;
  // Expand the node-validated spelling: an optional dotted tail becomes two groups, "::" the rest.
  let body = text;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (dotted) {
    const v4 = dotted[1]!.split(".").map(Number);
    body = `${body.slice(0, -dotted[1]!.length)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head = "", tail] = body.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const headGroups = parse(head);
  const tailGroups = tail === undefined ? [] : parse(tail);
  const groups = [
    ...headGroups,
    ...new Array<number>(8 - headGroups.length - tailGroups.length).fill(0),
    ...tailGroups,
  ];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Index key of an address on a network: "<network>/<ip>", the form Istio prints too. */
export function networkKey(network: string, ip: string): string {
  return `${network}/${ip}`;
}

/** "10.0.0.0/8"-style text of an address match, for config dumps. */
export function cidrText(address: Uint8Array, length: number): string {
  return `${ipFromBytes(address) ?? `<${address.length} bytes>`}/${length}`;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

// SocketAddress formats with the platform's inet_ntop: the RFC 5952 form, lowercase, longest zero
// run compressed. Writing that rule by hand is where IPv6 printers usually go wrong.
function compressIpv6(text: string): string {
  return new SocketAddress({ address: text, family: "ipv6" }).address;
}
