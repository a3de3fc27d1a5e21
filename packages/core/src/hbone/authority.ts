// The HBONE `:authority`: the inner destination as `ip:port` or `[ipv6]:port`, never a hostname
// (DESIGN §4). Strict parsing here means the inbound side never resolves names chosen by a peer.

import { isIPv4, isIPv6 } from "node:net";

export interface HboneTarget {
  /** The IP as text, without brackets. */
  address: string;
  port: number;
  family: 4 | 6;
}

/** The target named by `authority`, or undefined when it is not an IP literal with a port 1-65535. */
export function parseAuthority(authority: string | undefined): HboneTarget | undefined {
  if (!authority || authority.length > 64) return undefined;
  let host: string;
  let portText: string;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0 || authority[close + 1] !== ":") return undefined;
    host = authority.slice(1, close);
    portText = authority.slice(close + 2);
    // A zone id (fe80::1%eth0) names an interface on the sender's host, meaningless here.
    if (!isIPv6(host) || host.includes("%")) return undefined;
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon <= 0) return undefined;
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
    if (!isIPv4(host)) return undefined;
  }
  // Decimal digits only, no sign, no leading zero: one spelling per port.
  if (!/^[1-9][0-9]{0,4}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { address: host, port, family: host.includes(":") ? 6 : 4 };
}

/** `ip:port`, bracketing IPv6 as `:authority` and URLs require. */
export function formatAuthority(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
