// The waypoint's side toward the destination: an HBONE tunnel (with the waypoint's own identity)
// to the chosen endpoint's ztunnel, or plain TCP to an endpoint outside the mesh; then HTTP/1.1,
// HTTP/2 or opaque bytes over it. The cluster's DestinationRule bounds the connect
// (connectionPool.tcp.connectTimeout) and sets keepalive on the TCP sockets opened here.

import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  AmbientError,
  type HboneClientPool,
  hostPort,
  ipText,
  WaypointErrorCode,
  type Workload,
  type WorkloadCertificate,
} from "@ambient/core";
import { awaitConnect, workloadIdentity } from "@ambient/dataplane";
import { applyKeepalive, type KeepaliveSettings } from "./keepalive.js";

export interface UpstreamTarget {
  workload: Workload;
  port: number;
  /** DestinationRule connectionPool.tcp.connectTimeout; absent: `UpstreamDeps.connectTimeoutMs`. */
  connectTimeoutMs?: number;
  /**
   * connectionPool.tcp.tcpKeepalive, set on a plain TCP socket to an endpoint outside the mesh. An
   * HBONE session is shared by every cluster whose endpoints sit behind one ztunnel and already
   * probes its peer with HTTP/2 PING (every 10 s, dead after 20 s), so it is left out.
   */
  keepalive?: KeepaliveSettings;
}

export interface UpstreamDeps {
  pool: HboneClientPool;
  certificate: () => WorkloadCertificate | undefined;
  rootsPem: () => string[];
  localAddress: string;
  connectTimeoutMs: number;
}

/** An upstream connect that failed or timed out (503 UF by core's classifier). */
function connectError(message: string, cause?: unknown): AmbientError {
  return new AmbientError(WaypointErrorCode.UPSTREAM_CONNECT, message, cause === undefined ? {} : { cause });
}

/** A byte stream to `target.workload` port `target.port`, through HBONE when it is in the mesh. */
export async function openUpstream(
  deps: UpstreamDeps,
  target: UpstreamTarget,
  headers: Record<string, string>,
): Promise<Duplex> {
  const ip = target.workload.addresses[0] ? ipText(target.workload.addresses[0]) : "";
  if (!ip) throw connectError(`endpoint ${target.workload.uid} has no address`);
  const timeoutMs = target.connectTimeoutMs ?? deps.connectTimeoutMs;
  if (target.workload.tunnelProtocol !== "HBONE")
    return plainTcp(ip, target.port, timeoutMs, target.keepalive);
  const cert = deps.certificate();
  if (!cert) throw connectError("the waypoint has no certificate yet");
  try {
    return await deps.pool.connect({
      source: cert,
      rootsPem: deps.rootsPem(),
      destination: { host: ip, port: 15008 },
      expectedIdentities: [workloadIdentity(target.workload).toString()],
      authority: ip.includes(":") ? `[${ip}]:${target.port}` : `${ip}:${target.port}`,
      headers,
      localAddress: deps.localAddress,
      connectTimeoutMs: timeoutMs,
    });
  } catch (err) {
    throw connectError(`HBONE to ${ip}:${target.port} failed: ${(err as Error).message}`, err);
  }
}

async function plainTcp(
  host: string,
  port: number,
  timeoutMs: number,
  keepalive: KeepaliveSettings | undefined,
): Promise<Socket> {
  const what = hostPort(host, port);
  const s = await awaitConnect(connect({ host, port, allowHalfOpen: true, noDelay: true }), {
    timeoutMs,
    what,
    code: WaypointErrorCode.UPSTREAM_CONNECT,
  });
  try {
    if (keepalive) applyKeepalive(s, keepalive);
  } catch (err) {
    s.destroy();
    throw connectError(`connected to ${what} but ${(err as Error).message}`, err);
  }
  return s;
}
