// DestinationRule connectionPool.tcp.tcpKeepalive on a TCP socket the waypoint opened. Node's
// setKeepAlive sets SO_KEEPALIVE and the idle time only (libuv before 1.48 leaves the probe
// interval and count at the kernel's 75 s and 9), so those two go through @ambient/netns.

import type { Socket } from "node:net";
import { setKeepalive } from "@ambient/netns";

/** What the rule set; absent fields keep the kernel's value (Envoy passes them the same way). */
export interface KeepaliveSettings {
  timeMs?: number;
  intervalMs?: number;
  probes?: number;
}

/**
 * Turns keepalive on with the rule's values. The kernel counts in whole seconds; the validator
 * refuses anything below 1 s, and a fraction rounds up so a value never becomes "kernel default".
 * Throws (with the errno name) when the values cannot be set: the connection is then refused
 * rather than kept without the keepalive the rule asked for.
 */
export function applyKeepalive(socket: Socket, k: KeepaliveSettings): void {
  const seconds = (ms: number | undefined) => (ms === undefined ? 0 : Math.max(1, Math.ceil(ms / 1000)));
  socket.setKeepAlive(true, k.timeMs ?? 0);
  if (k.intervalMs === undefined && k.probes === undefined) return;
  // biome-ignore lint/suspicious/noExplicitAny: the fd is only on Node's internal handle.
  const fd = (socket as any)._handle?.fd as number | undefined;
  if (fd === undefined || fd < 0) throw new Error("tcpKeepalive: the socket has no file descriptor");
  setKeepalive(fd, {
    idleSeconds: seconds(k.timeMs),
    intervalSeconds: seconds(k.intervalMs),
    probes: k.probes ?? 0,
  });
}
