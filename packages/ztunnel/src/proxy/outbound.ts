// Outbound: a local pod's connection to (host, port), from SOCKS5 (15080) or capture (15001).
// Phases: route → (HBONE: certificate → CONNECT through the pool) or (passthrough: plain TCP) →
// tell the client it is established → copy both ways.

import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  errorMessage,
  type HboneClientPool,
  hostPort,
  type Logger,
  ProxyErrorCode,
  SpiffeId,
  type Workload,
} from "@ambient/core";
import {
  awaitConnect,
  type CertificateManager,
  connectionLabels,
  copyBidirectional,
  endSocket,
  isBenign,
  principalOf,
} from "@ambient/dataplane";
import { Connection, type ConnectionTelemetry } from "./connections.js";
import { proxyError } from "./errors.js";
import type { HboneRoute, Route, Router, Target } from "./resolve.js";
import type { PodRef, SocketFactory } from "./socket-factory.js";

export interface OutboundContext extends ConnectionTelemetry {
  router: Router;
  pool: HboneClientPool;
  certs: CertificateManager;
  sockets: SocketFactory;
  logger: Logger;
  open: Set<Connection>;
  clusterId: string;
  connectTimeoutMs: number;
  /** How long a connection waits for its pod's first certificate. */
  certificateWaitMs: number;
}

export interface OutboundHooks {
  /** The tunnel or TCP connection is up (SOCKS5 answers "succeeded" here). */
  established(bound?: { host: string; port: number }): void;
  /** Nothing was connected (SOCKS5 answers with the mapped reply code). */
  failed(err: unknown): void;
}

export function handleOutbound(
  ctx: OutboundContext,
  source: Workload,
  sourceRef: PodRef,
  client: Socket,
  target: Target,
  hooks: OutboundHooks,
): void {
  const conn = new Connection(
    ctx,
    {
      direction: "outbound",
      "src.addr": `${client.remoteAddress}:${client.remotePort}`,
      "src.workload": source.name,
      "src.namespace": source.namespace,
      "src.identity": principalOf(source),
      "dst.addr": `${target.host}:${target.port}`,
    },
    (reason) => endSocket(client, reason),
    ctx.open,
  );
  client.on("error", () => {});
  // A client that goes away while the tunnel is being opened cancels the CONNECT (RST_STREAM
  // CANCEL on that stream only), so the peer ztunnel lets go of the app connection it is making.
  const clientGone = new AbortController();
  let connected = false;
  client.once("close", () => {
    if (connected) return;
    clientGone.abort(
      proxyError(
        ProxyErrorCode.DOWNSTREAM_CLOSED,
        "the client closed the connection before it was established",
      ),
    );
  });
  void run().catch((err) => {
    if (!connected) hooks.failed(err);
    else endSocket(client, err);
    conn.finish(err, "outbound connection failed");
  });

  async function run(): Promise<void> {
    // Phase 1: where does it go.
    const route = await ctx.router.route(source, target);
    conn.update(routeLogFields(route));

    // Phase 2: open the upstream.
    const upstream =
      route.kind === "passthrough" ? await passthrough(route.host, route.port) : await tunnel(route);
    connected = true;
    hooks.established();

    // Phase 3: count and copy.
    conn.established(
      connectionLabels({
        reporter: "source",
        source,
        destination: route.destination,
        destinationPrincipal: route.kind === "passthrough" ? undefined : peerIdentity(upstream, route),
        service: route.service,
        mtls: route.kind !== "passthrough",
      }),
      client,
      false,
    );
    const { error } = await copyBidirectional(client, upstream);
    conn.finish(error && !isBenign(error) ? error : undefined);
  }

  async function tunnel(route: HboneRoute): Promise<Duplex> {
    const cert = await certificateFor(ctx, source);
    return ctx.pool.connect({
      source: cert,
      rootsPem: ctx.certs.rootsPem(),
      destination: route.hboneAddress,
      expectedIdentities: route.expectedIdentities,
      authority: route.authority,
      headers: hboneHeaders(ctx.clusterId, source, client),
      localAddress: sourceRef.ip,
      connectTimeoutMs: ctx.connectTimeoutMs,
      signal: clientGone.signal,
    });
  }

  function passthrough(host: string, port: number): Promise<Socket> {
    return awaitConnect(ctx.sockets.connect(sourceRef, { host, port }), {
      timeoutMs: ctx.connectTimeoutMs,
      what: hostPort(host, port),
      code: ProxyErrorCode.UPSTREAM_CONNECT,
    });
  }
}

async function certificateFor(ctx: OutboundContext, source: Workload) {
  const id = principalOf(source);
  const have = ctx.certs.get(id);
  if (have) return have;
  const signal = AbortSignal.timeout(ctx.certificateWaitMs);
  try {
    return await ctx.certs.whenReady(SpiffeId.parse(id), signal);
  } catch (err) {
    throw proxyError(
      ProxyErrorCode.NO_CERTIFICATE,
      `no certificate for ${id} yet: ${errorMessage(err)}`,
      err,
    );
  }
}

function peerIdentity(upstream: Duplex, route: HboneRoute): string | undefined {
  const info = (upstream as { hbone?: { peerIdentity?: { toString(): string } } }).hbone;
  return info?.peerIdentity?.toString() ?? route.expectedIdentities[0];
}

function routeLogFields(route: Route) {
  return {
    ...(route.kind !== "passthrough"
      ? {
          "dst.hbone_addr": `${route.hboneAddress.host}:${route.hboneAddress.port}`,
          "dst.addr": route.authority,
        }
      : { "dst.addr": `${route.host}:${route.port}` }),
    ...(route.service ? { "dst.service": route.service.hostname } : {}),
    ...(route.destination
      ? {
          "dst.workload": route.destination.name,
          "dst.namespace": route.destination.namespace,
          ...(route.kind !== "passthrough" ? { "dst.identity": route.expectedIdentities[0] } : {}),
        }
      : {}),
  };
}

/** `forwarded`, `baggage` and `traceparent`, as Istio's ztunnel sends them with the CONNECT. */
export function hboneHeaders(clusterId: string, source: Workload, client: Socket): Record<string, string> {
  const baggage = [
    `k8s.cluster.name=${clusterId}`,
    `k8s.namespace.name=${source.namespace}`,
    `k8s.${source.workloadType.toLowerCase()}.name=${source.workloadName || source.name}`,
    `service.name=${source.canonicalName}`,
    `service.version=${source.canonicalRevision}`,
  ].join(",");
  const forwardedFor = client.remoteAddress?.includes(":")
    ? `"[${client.remoteAddress}]:${client.remotePort}"`
    : `"${client.remoteAddress}:${client.remotePort}"`;
  return {
    forwarded: `for=${forwardedFor}`,
    baggage,
    traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`,
  };
}
