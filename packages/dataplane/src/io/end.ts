// Ending a downstream connection the way core's classifier says (`end`): a refused or broken one
// is reset, so the client sees a failure (TCP RST, or RST_STREAM for an HBONE stream); a drained or
// timed-out one is closed cleanly (FIN, END_STREAM).

import type { ServerHttp2Stream } from "node:http2";
import { constants } from "node:http2";
import type { Socket } from "node:net";
import { classify } from "@ambient/core";

/** A TCP client connection (SOCKS5, captured, plaintext inbound). */
export function endSocket(socket: Socket, reason: unknown): void {
  if (socket.destroyed) return;
  if (classify(reason).end === "reset") socket.resetAndDestroy();
  else socket.end(() => socket.destroy());
}

/**
 * An HBONE stream whose CONNECT was answered already. A policy denial resets with CANCEL (the
 * code ztunnel's peer reads as "refused by policy"), other failures with INTERNAL_ERROR; a clean end
 * sends NO_ERROR, which the peer turns into a FIN toward its client.
 */
export function endStream(stream: ServerHttp2Stream, reason: unknown): void {
  if (stream.destroyed) return;
  const c = classify(reason);
  if (c.end === "close") stream.close(constants.NGHTTP2_NO_ERROR);
  else stream.close(c.flag === "DENY" ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_INTERNAL_ERROR);
}
