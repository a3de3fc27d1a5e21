// Inbound plaintext (15006): a peer without HBONE. Authorized with no identity, so STRICT
// PeerAuthentication (a DENY of peers without a principal) refuses it; PERMISSIVE lets it through.
// The destination port is the original destination's (capture), or in local mode, where nothing
// is captured, the pod's first container port.

import type { Socket } from "node:net";
import { ProxyErrorCode, type Workload } from "@ambient/core";
import { connectionLabels, copyBidirectional, endSocket, isBenign, principalOf } from "@ambient/dataplane";
import { type ConnectionFacts, evaluate, explain } from "../rbac/index.js";
import { Connection } from "./connections.js";
import { proxyError } from "./errors.js";
import { connectApp, type InboundContext, localDestination } from "./inbound.js";
import type { PodRef } from "./socket-factory.js";

export function handleInboundPlaintext(
  ctx: InboundContext,
  pod: Workload,
  podRef: PodRef,
  fallbackPort: number | undefined,
  client: Socket,
): void {
  const source = client.remoteAddress ? ctx.state.workloadByIp(client.remoteAddress) : undefined;
  const conn = new Connection(
    ctx,
    {
      direction: "inbound",
      "src.addr": `${client.remoteAddress}:${client.remotePort}`,
      ...(source ? { "src.workload": source.name, "src.namespace": source.namespace } : {}),
      "dst.addr": `${client.localAddress}:${client.localPort}`,
      "dst.workload": pod.name,
      "dst.namespace": pod.namespace,
      "dst.identity": principalOf(pod),
    },
    (reason) => endSocket(client, reason),
    ctx.open,
  );
  client.on("error", () => {});
  void run().catch((err) => {
    // A refused TCP connection is reset, not closed politely: the client sees it failed.
    endSocket(client, err);
    conn.finish(err, "inbound plaintext connection refused");
  });

  async function run(): Promise<void> {
    const original = ctx.sockets.originalDestination(client);
    const dstPort = original?.port ?? fallbackPort;
    const originalIp = original?.host ?? podRef.ip;
    if (dstPort === undefined) {
      throw proxyError(
        ProxyErrorCode.NO_ORIGINAL_DESTINATION,
        `no original destination for a plaintext connection to ${pod.namespace}/${pod.name}, and the pod declares no container port`,
      );
    }
    conn.update({ "dst.addr": `${originalIp}:${dstPort}` });
    // Captured traffic to the pod's own 15080 would otherwise be handed to ztunnel's SOCKS5 there.
    const dstIp = localDestination(pod, originalIp, dstPort, `${originalIp}:${dstPort}`);

    const facts: ConnectionFacts = { srcIp: client.remoteAddress ?? "", dstIp, dstPort };
    const decision = evaluate(ctx.state.policiesFor(pod), facts);
    if (!decision.allowed)
      throw proxyError(ProxyErrorCode.DENIED, `plaintext peer refused: ${explain(decision)}`);
    conn.recheck = { facts, destinationUid: pod.uid };

    const app = await connectApp(ctx, podRef, dstIp, dstPort);
    conn.established(
      connectionLabels({ reporter: "destination", source, destination: pod, mtls: false }),
      app,
      true,
    );
    const { error } = await copyBidirectional(client, app);
    conn.finish(error && !isBenign(error) ? error : undefined);
  }
}
