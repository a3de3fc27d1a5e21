// Inbound HBONE (15008): a CONNECT from a peer ztunnel or a waypoint, already mutually
// authenticated by TLS. Phases: build the request → authorize → connect to the app → answer 200 →
// copy both ways. Each phase fails with its own typed error; `classify` turns it into the status.

import type { ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import {
  canonicalIp,
  classify,
  type HboneRequest,
  hostPort,
  ipText,
  type Logger,
  ProxyErrorCode,
  respondStatus,
  type Workload,
} from "@ambient/core";
import {
  awaitConnect,
  connectionLabels,
  copyBidirectional,
  endStream,
  isBenign,
  type ProxyState,
  principalOf,
} from "@ambient/dataplane";
import { type ConnectionFacts, evaluate, explain } from "../rbac/index.js";
import { Connection, type ConnectionTelemetry } from "./connections.js";
import { proxyError } from "./errors.js";
import { isOwnPort } from "./ports.js";
import type { PodRef, SocketFactory } from "./socket-factory.js";

export interface InboundContext extends ConnectionTelemetry {
  state: ProxyState;
  sockets: SocketFactory;
  logger: Logger;
  /** Open inbound connections, re-checked when policy changes. */
  open: Set<Connection>;
  connectTimeoutMs: number;
}

/** Handles one CONNECT stream arriving at `pod`'s 15008. */
export function handleInboundStream(
  ctx: InboundContext,
  pod: Workload,
  podRef: PodRef,
  stream: ServerHttp2Stream,
  req: HboneRequest,
): void {
  const source = sourceWorkload(ctx.state, req);
  const peer = req.peerIdentity.toString();
  const conn = new Connection(
    ctx,
    {
      direction: "inbound",
      "src.addr": `${req.remoteAddress}:${req.remotePort}`,
      "src.identity": peer,
      ...(source ? { "src.workload": source.name, "src.namespace": source.namespace } : {}),
      "dst.addr": req.authority,
      "dst.hbone_addr": `${req.localAddress}:${req.localPort}`,
      "dst.workload": pod.name,
      "dst.namespace": pod.namespace,
      "dst.identity": principalOf(pod),
    },
    (reason) => endStream(stream, reason),
    ctx.open,
  );
  void run().catch((err) => {
    if (!stream.headersSent && !stream.destroyed) respondStatus(stream, classify(err).status);
    stream.close();
    conn.finish(err, "inbound HBONE request refused");
  });

  async function run(): Promise<void> {
    // Phase 1: the request names this pod and a port of its app.
    const target = req.target;
    const dstIp = localDestination(pod, target.address, target.port, req.authority);

    // Phase 2: L4 authorization with the peer's verified identity.
    const facts: ConnectionFacts = {
      srcIp: req.remoteAddress,
      dstIp,
      dstPort: target.port,
      srcIdentity: req.peerIdentity,
    };
    const decision = evaluate(ctx.state.policiesFor(pod), facts);
    if (!decision.allowed) throw proxyError(ProxyErrorCode.DENIED, explain(decision));
    conn.recheck = { facts, destinationUid: pod.uid };

    // Phase 3: connect to the app.
    const app = await connectApp(ctx, podRef, dstIp, target.port);

    // Phase 4: 200, then bytes both ways. The peer may have reset the stream, or the session may
    // have gone, while the app was being connected: then nothing would ever end the app's socket.
    if (!respondStatus(stream, 200)) {
      app.resetAndDestroy();
      throw proxyError(
        ProxyErrorCode.DOWNSTREAM_CLOSED,
        `the HBONE stream closed (${streamCloseReason(stream)}) before ${req.authority} answered`,
      );
    }
    conn.established(
      connectionLabels({
        reporter: "destination",
        source,
        sourcePrincipal: peer,
        destination: pod,
        mtls: true,
      }),
      app,
      true,
    );
    const { error } = await copyBidirectional(stream, app);
    conn.finish(error && !isBenign(error) ? error : undefined);
  }
}

/**
 * The canonical IP of an inbound destination that this listener may connect to: the pod's own address
 * (any spelling, e.g. IPv4-mapped IPv6), on a port that is not one of ztunnel's listeners. Anything
 * else (the node, localhost, another node's pod) is refused: inbound is never an open proxy.
 */
export function localDestination(pod: Workload, address: string, port: number, shown: string): string {
  const ip = canonicalIp(address);
  if (!ip || !pod.addresses.some((a) => ipText(a) === ip)) {
    throw proxyError(
      ProxyErrorCode.UNKNOWN_DESTINATION,
      `${shown} is not ${pod.namespace}/${pod.name}, the only workload behind this listener`,
    );
  }
  if (isOwnPort(port)) {
    throw proxyError(
      ProxyErrorCode.OWN_PORT,
      `${shown} is ztunnel's own listener in ${pod.namespace}/${pod.name}, not the app's`,
    );
  }
  return ip;
}

/** Why a stream we never answered is gone: the peer's reset, or its session closing. */
function streamCloseReason(stream: ServerHttp2Stream): string {
  if (stream.rstCode !== undefined && stream.rstCode !== 0) return `RST_STREAM code ${stream.rstCode}`;
  return stream.session === undefined || stream.session.destroyed ? "session closed" : "stream closed";
}

/** The source workload, when its address is known and it holds the identity it presented. */
function sourceWorkload(state: ProxyState, req: HboneRequest): Workload | undefined {
  const w = state.workloadByIp(req.remoteAddress);
  if (!w) return undefined;
  return principalOf(w) === req.peerIdentity.toString() ? w : undefined;
}

export function connectApp(
  ctx: Pick<InboundContext, "sockets" | "connectTimeoutMs">,
  pod: PodRef,
  host: string,
  port: number,
): Promise<Socket> {
  const socket = ctx.sockets.connectToApp(pod, { host, port });
  socket.setNoDelay(true);
  return awaitConnect(socket, {
    timeoutMs: ctx.connectTimeoutMs,
    what: `${pod.namespace}/${pod.name} at ${hostPort(host, port)}`,
    code: ProxyErrorCode.UPSTREAM_CONNECT,
  });
}
