// The end of an HTTP/1.1 upgrade that the upstream accepted: its 101 goes to the client and the
// connection carries raw bytes both ways from then on, counted for the request's one metrics sample
// and access-log line (response code 101, the tunnel's bytes and lifetime). Everything before this
// — authentication, authorization, routing, faults, the pick — ran as for any request.

import type { Duplex } from "node:stream";
import { WaypointErrorCode } from "@ambient/core";
import { copyBidirectional, isBenign } from "@ambient/dataplane";
import { waypointError } from "../errors.js";
import type { ByteStream } from "../stream-adapter.js";
import type { Downstream } from "./downstream.js";
import type { Exchange } from "./exchange.js";
import type { Forwarded } from "./forward.js";
import { downstreamHeaders } from "./headers.js";
import type { ForwardPlan } from "./route.js";
import type { RequestClock } from "./timers.js";

export async function switchProtocols(
  down: Downstream,
  ex: Exchange,
  plan: ForwardPlan,
  forwarded: Forwarded,
  clock: RequestClock,
): Promise<void> {
  const { response } = forwarded;
  const upgrade = response.upgrade;
  if (!upgrade) throw new Error("switchProtocols needs a 101 response");
  // A route timeout would cut a WebSocket at an arbitrary moment (Istio turns it off for them); the
  // stream idle timeout still closes a tunnel nobody uses.
  forwarded.dispose();
  clock.upgraded();
  if (down.protocol !== "http1" || !down.upgrade) {
    upgrade.socket.destroy();
    throw waypointError(WaypointErrorCode.UPSTREAM_RESET, "a 101 answer to a request that cannot upgrade");
  }
  ex.status = 101;
  ex.upgraded = true;
  const client = down.upgrade.socket.takeOver();
  // What the client sent after its request head (node:http stopped there), then what came since.
  client.unread.unshift(down.upgrade.head);
  const server = takeOverUpstream(upgrade.socket);
  const lines = ["HTTP/1.1 101 Switching Protocols"];
  for (const [k, v] of Object.entries(downstreamHeaders(response.headers, plan, true)))
    for (const value of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${value}`);
  client.stream.write(`${lines.join("\r\n")}\r\n\r\n`);
  for (const chunk of [upgrade.head, ...server.unread]) if (chunk.length > 0) write(client.stream, chunk);
  for (const chunk of client.unread) {
    if (chunk.length > 0) write(server.stream, chunk);
    ex.requestBytes += chunk.length;
  }
  ex.responseBytes += upgrade.head.length;
  client.stream.on("data", (c: Buffer) => {
    ex.requestBytes += c.length;
    clock.touch();
  });
  server.stream.on("data", (c: Buffer) => {
    ex.responseBytes += c.length;
    clock.touch();
  });
  const idle = () => {
    const err = clock.signal.reason as Error;
    ex.fail(err);
    client.stream.destroy(err);
    server.stream.destroy(err);
  };
  clock.signal.addEventListener("abort", idle, { once: true });
  const { error } = await copyBidirectional(client.stream, server.stream);
  clock.signal.removeEventListener("abort", idle);
  if (error && ex.failure === undefined && !isBenign(error)) ex.fail(error);
  forwarded.endpoint.done({ status: 101 });
}

/** The raw stream under node:http's upstream socket (our adapter over the HBONE stream). */
function takeOverUpstream(socket: Duplex): { stream: Duplex; unread: Buffer[] } {
  const adapter = socket as Partial<ByteStream>;
  if (typeof adapter.takeOver === "function") return adapter.takeOver();
  return { stream: socket, unread: [] };
}

function write(stream: Duplex, chunk: Buffer): void {
  if (!stream.destroyed) stream.write(chunk);
}
