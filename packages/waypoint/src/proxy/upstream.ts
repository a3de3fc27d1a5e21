// The waypoint's side toward the destination: an HBONE tunnel (with the waypoint's own identity)
// to the chosen endpoint's ztunnel, or plain TCP to an endpoint outside the mesh or to the original
// destination of a PASSTHROUGH service; then HTTP/1.1, HTTP/2 or opaque bytes over it. A DNS
// endpoint's hostname is resolved here, per connection. The cluster's DestinationRule bounds the
// connect (connectionPool.tcp.connectTimeout) and sets keepalive on the TCP sockets opened here.

import { lookup } from "node:dns/promises";
import { connect, isIP, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  AmbientError,
  errorMessage,
  type HboneClientPool,
  hostPort,
  ipText,
  WaypointErrorCode,
  type Workload,
  type WorkloadCertificate,
} from "@ambient/core";
import { awaitConnect, workloadIdentity } from "@ambient/dataplane";
import { applyKeepalive, type KeepaliveSettings } from "./keepalive.js";
import { originateTls, type UpstreamTls } from "./tls-origination.js";

export interface UpstreamTarget {
  /** The endpoint; absent when the connection goes to `address`, a PASSTHROUGH service's original destination. */
  workload?: Workload;
  /** The IP the client dialed, for a PASSTHROUGH service (no endpoint is picked). */
  address?: string;
  port: number;
  /** DestinationRule connectionPool.tcp.connectTimeout; absent: `UpstreamDeps.connectTimeoutMs`. */
  connectTimeoutMs?: number;
  /**
   * connectionPool.tcp.tcpKeepalive, set on a plain TCP socket to an endpoint outside the mesh. An
   * HBONE session is shared by every cluster whose endpoints sit behind one ztunnel and already
   * probes its peer with HTTP/2 PING (every 10 s, dead after 20 s), so it is left out.
   */
  keepalive?: KeepaliveSettings;
  /** DestinationRule `tls` SIMPLE or MUTUAL: the waypoint originates TLS over the stream. */
  tls?: UpstreamTls;
}

export interface UpstreamDeps {
  pool: HboneClientPool;
  certificate: () => WorkloadCertificate | undefined;
  rootsPem: () => string[];
  localAddress: string;
  connectTimeoutMs: number;
  /** DNS for DNS endpoints (a hostname, no address); default node:dns lookup. Injectable for tests. */
  resolveName?: (hostname: string) => Promise<string>;
}

/** An upstream connect that failed or timed out (503 UF by core's classifier). */
function connectError(message: string, cause?: unknown): AmbientError {
  return new AmbientError(WaypointErrorCode.UPSTREAM_CONNECT, message, cause === undefined ? {} : { cause });
}

/**
 * Where a connection to `target` goes before DNS: the original destination, the endpoint's IP, or
 * a DNS endpoint's hostname ("" when the endpoint has none). Connection pools key on it, so a DNS
 * endpoint's connections are pooled by name and each new one resolves the name again.
 */
export function upstreamHost(target: UpstreamTarget): string {
  if (target.address !== undefined) return target.address;
  return target.workload ? endpointHost(target.workload) : "";
}

/** A workload's first IP or, for a DNS endpoint, its hostname. */
export function endpointHost(workload: Workload): string {
  const first = workload.addresses[0];
  return first ? ipText(first) : workload.hostname;
}

/** The IP to dial for `target`: a DNS endpoint's hostname is looked up now, as the connection opens. */
async function upstreamIp(deps: UpstreamDeps, target: UpstreamTarget): Promise<string> {
  const host = upstreamHost(target);
  if (!host) throw connectError(`endpoint ${target.workload?.uid} has no address`);
  if (isIP(host)) return host;
  try {
    return await (deps.resolveName ?? defaultResolveName)(host);
  } catch (err) {
    throw connectError(
      `cannot resolve ${host}, the hostname of endpoint ${target.workload?.uid}: ${errorMessage(err)}`,
      err,
    );
  }
}

async function defaultResolveName(hostname: string): Promise<string> {
  return (await lookup(hostname)).address;
}

/**
 * A byte stream to `target` port `target.port`: through HBONE when the endpoint is in the mesh,
 * plain TCP otherwise (outside the mesh, or a PASSTHROUGH service's original destination); with
 * the cluster's TLS origination over it, offering `alpn` (the protocol the caller will speak).
 */
export async function openUpstream(
  deps: UpstreamDeps,
  target: UpstreamTarget,
  headers: Record<string, string>,
  alpn?: string[],
): Promise<Duplex> {
  const stream = await openTransport(deps, target, headers);
  if (!target.tls) return stream;
  return originateTls(stream, target.tls, target.connectTimeoutMs ?? deps.connectTimeoutMs, alpn);
}

async function openTransport(
  deps: UpstreamDeps,
  target: UpstreamTarget,
  headers: Record<string, string>,
): Promise<Duplex> {
  const ip = await upstreamIp(deps, target);
  const timeoutMs = target.connectTimeoutMs ?? deps.connectTimeoutMs;
  const workload = target.workload;
  if (workload?.tunnelProtocol !== "HBONE") return plainTcp(ip, target.port, timeoutMs, target.keepalive);
  const cert = deps.certificate();
  if (!cert) throw connectError("the waypoint has no certificate yet");
  try {
    return await deps.pool.connect({
      source: cert,
      rootsPem: deps.rootsPem(),
      destination: { host: ip, port: 15008 },
      expectedIdentities: [workloadIdentity(workload).toString()],
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
