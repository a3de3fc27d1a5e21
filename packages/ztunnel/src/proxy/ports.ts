// ztunnel's own listeners in every pod it serves. A tunnel or plaintext connection addressed to one of
// them would enter ztunnel itself (SOCKS5 there reaches anywhere as the pod): inbound refuses them.

export const PORTS = {
  outbound: 15001,
  inboundPlaintext: 15006,
  hbone: 15008,
  socks5: 15080,
  /** The DNS proxy (UDP and TCP), when enabled. */
  dns: 15053,
} as const;

const OWN = new Set<number>(Object.values(PORTS));

export function isOwnPort(port: number): boolean {
  return OWN.has(port);
}
