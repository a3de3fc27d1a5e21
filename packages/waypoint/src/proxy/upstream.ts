// The waypoint's side toward the destination: an HBONE tunnel (with the waypoint's own identity)
// to the chosen endpoint's ztunnel, or plain TCP to an endpoint outside the mesh; then HTTP/1.1,
// HTTP/2 or opaque bytes over it. The cluster's DestinationRule bounds the connect
// (connectionPool.tcp.connectTimeout) and sets keepalive on the TCP sockets opened here.

import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type HboneClientPool, ipText, type Workload, type WorkloadCertificate } from "@ambient/core";
import { workloadIdentity } from "@ambient/dataplane";
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

/** Stable code of UpstreamError, for classifiers that match on `code`. */
export const UPSTREAM_CONNECT_FAILED = "AMB_WAYPOINT_UPSTREAM_CONNECT";

export class UpstreamError extends Error {
  readonly code = UPSTREAM_CONNECT_FAILED;

  constructor(
    message: string,
    readonly flag: "UF" | "URX",
    readonly connectFailure: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A byte stream to `target.workload` port `target.port`, through HBONE when it is in the mesh. */
export async function openUpstream(
  deps: UpstreamDeps,
  target: UpstreamTarget,
  headers: Record<string, string>,
): Promise<Duplex> {
  const ip = target.workload.addresses[0] ? ipText(target.workload.addresses[0]) : "";
  if (!ip) throw new UpstreamError(`endpoint ${target.workload.uid} has no address`, "UF", true);
  const timeoutMs = target.connectTimeoutMs ?? deps.connectTimeoutMs;
  if (target.workload.tunnelProtocol !== "HBONE")
    return plainTcp(ip, target.port, timeoutMs, target.keepalive);
  const cert = deps.certificate();
  if (!cert) throw new UpstreamError("the waypoint has no certificate yet", "UF", true);
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
    throw new UpstreamError(`HBONE to ${ip}:${target.port} failed: ${(err as Error).message}`, "UF", true, {
      cause: err,
    });
  }
}

function plainTcp(
  host: string,
  port: number,
  timeoutMs: number,
  keepalive: KeepaliveSettings | undefined,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError(`connecting to ${host}:${port} timed out after ${timeoutMs} ms`, "UF", true));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      try {
        if (keepalive) applyKeepalive(s, keepalive);
      } catch (err) {
        s.destroy();
        reject(
          new UpstreamError(`connected to ${host}:${port} but ${(err as Error).message}`, "UF", true, {
            cause: err,
          }),
        );
        return;
      }
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(
        new UpstreamError(`cannot connect to ${host}:${port}: ${err.message}`, "UF", true, { cause: err }),
      );
    });
  });
}
