// IP address and CIDR parsing into the byte form the workload xDS carries (4 or 16 bytes).
// Parsing follows Go's net/netip, which is what Istio validates with: IPv4 octets without leading
// zeros, IPv6 with at most one "::" and an optional dotted IPv4 tail, no zones.

export interface Cidr {
  address: Uint8Array;
  /** Prefix length in bits. */
  length: number;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DECIMAL.test(part) || part.length > 3) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | undefined {
  if (text.includes("%")) return undefined; // zones never name a pod or a policy address
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === parts.length - 1 && part.includes(".")) {
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
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // A dotted IPv4 tail is only allowed at the very end of the address.
  if (halves.length === 2 && halves[0]!.includes(".")) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** The 4- or 16-byte form of an IPv4 or IPv6 address, or undefined when it is not one. */
export function parseIp(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 64) return undefined;
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

export function isIp(text: unknown): boolean {
  return typeof text === "string" && parseIp(text) !== undefined;
}

/**
 * `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128, as Istio's translation treats it).
 * Host bits are cleared so that `10.1.2.3/8` and `10.0.0.0/8` produce the same bytes.
 */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.indexOf("/");
  if (slash < 0) {
    const address = parseIp(text);
    return address && { address, length: address.length * 8 };
  }
  const address = parseIp(text.slice(0, slash));
  const bits = text.slice(slash + 1);
  if (!address || !DECIMAL.test(bits)) return undefined;
  const length = Number(bits);
  if (length > address.length * 8) return undefined;
  for (let i = 0; i < address.length; i++) {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    address[i] = address[i]! & (0xff << (8 - keep)) & 0xff;
  }
  return { address, length };
}

export function isCidrOrIp(text: unknown): boolean {
  return typeof text === "string" && parseCidr(text) !== undefined;
}
