// The waypoint's side toward the destination: an HBONE tunnel (with the waypoint's own identity)
// to the chosen endpoint's ztunnel, or plain TCP to an endpoint outside the mesh; then HTTP/1.1 or
// HTTP/2 spoken over it.

import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type HboneClientPool, ipText, type Workload, type WorkloadCertificate } from "@ambient/core";
import { workloadIdentity } from "@ambient/dataplane";

export interface UpstreamTarget {
  workload: Workload;
  port: number;
}

export interface UpstreamDeps {
  pool: HboneClientPool;
  certificate: () => WorkloadCertificate | undefined;
  rootsPem: () => string[];
  localAddress: string;
  connectTimeoutMs: number;
}

export class UpstreamError extends Error {
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
  if (target.workload.tunnelProtocol !== "HBONE") return plainTcp(ip, target.port, deps.connectTimeoutMs);
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
      connectTimeoutMs: deps.connectTimeoutMs,
    });
  } catch (err) {
    throw new UpstreamError(`HBONE to ${ip}:${target.port} failed: ${(err as Error).message}`, "UF", true, {
      cause: err,
    });
  }
}

function plainTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError(`connecting to ${host}:${port} timed out`, "UF", true));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
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
