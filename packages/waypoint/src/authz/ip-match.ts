// IP addresses and CIDR blocks for `ipBlocks`, `remoteIpBlocks` and the `source.ip`, `remote.ip` and
// `destination.ip` conditions. Kept local (ztunnel's matcher works on xDS bytes, not policy text);
// an IPv4-mapped IPv6 peer is read as its IPv4 address, as dual-stack sockets report IPv4 peers so.

export interface Ip {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

export interface Cidr extends Ip {
  readonly prefixLength: number;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string, allowV4Tail: boolean): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (allowV4Tail && i === parts.length - 1 && part.includes(".")) {
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
  const compressed = halves.length === 2;
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

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** An address as a socket or X-Forwarded-For reports it; a zone (`%eth0`) is dropped. */
export function parseIp(text: string): Ip | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 64) return undefined;
  let s = text.trim();
  // XFF entries are sometimes bracketed IPv6 (`[::1]`); policies never are.
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (!s.includes(":")) {
    const v4 = parseIPv4(s);
    return v4 ? { family: 4, bytes: v4 } : undefined;
  }
  const zone = s.indexOf("%");
  const v6 = parseIPv6(zone >= 0 ? s.slice(0, zone) : s);
  if (!v6) return undefined;
  if (isMapped(v6)) return { family: 4, bytes: v6.slice(12) };
  return { family: 6, bytes: v6 };
}

/**
 * "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128), as Istio's AddrStrToCidrRange reads
 * policy values. Host bits past the prefix are ignored, as Envoy's CidrRange masks them.
 */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.indexOf("/");
  const addressText = slash >= 0 ? text.slice(0, slash) : text;
  let ip: Ip | undefined;
  if (addressText.includes(":")) {
    // A mapped prefix in a policy stays IPv6 (16 bytes), as Envoy keeps it.
    const v6 = addressText.includes("%") ? undefined : parseIPv6(addressText);
    ip = v6 ? { family: 6, bytes: v6 } : undefined;
  } else {
    const v4 = parseIPv4(addressText);
    ip = v4 ? { family: 4, bytes: v4 } : undefined;
  }
  if (!ip) return undefined;
  const max = ip.bytes.length * 8;
  let prefixLength = max;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
    prefixLength = Number(bits);
    if (prefixLength > max) return undefined;
  }
  return { ...ip, prefixLength };
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  if (cidr.family !== ip.family) return false;
  let remaining = cidr.prefixLength;
  for (let i = 0; remaining > 0; i++, remaining -= 8) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if ((cidr.bytes[i]! & mask) !== (ip.bytes[i]! & mask)) return false;
  }
  return true;
}
