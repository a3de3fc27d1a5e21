// The client's side of one request, over HTTP/1.1 (node:http) or HTTP/2 (node:http2's compatibility
// API): how an answer is written, how a broken one is cut off, and — for an HTTP/1.1 upgrade
// request — the connection under it, which a 101 takes over.

import type { IncomingMessage, ServerResponse } from "node:http";
import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { ByteStream } from "../stream-adapter.js";
import type { Exchange } from "./exchange.js";

export type Downstream =
  | {
      protocol: "http1";
      req: IncomingMessage;
      res: ServerResponse;
      /**
       * Upgrade requests only (node:http stopped parsing after their head): the connection, which a
       * 101 takes over, and the bytes that came after the head.
       */
      upgrade?: { socket: ByteStream; head: Buffer };
    }
  | { protocol: "h2"; req: Http2ServerRequest; res: Http2ServerResponse };

/** The answer can no longer be written (the client left, or the stream is gone). */
export function downstreamGone(down: Downstream): boolean {
  return down.protocol === "h2" ? down.res.stream.destroyed : down.res.destroyed || down.res.writableEnded;
}

/**
 * Ends an answer that cannot be completed, so the client sees a failure rather than a short body
 * that looks whole: HTTP/2 resets the stream, HTTP/1.1 closes the connection mid-message.
 */
export function cutOff(down: Downstream): void {
  if (down.protocol === "h2") {
    if (!down.res.stream.destroyed) down.res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  } else if (!down.res.destroyed) {
    down.res.destroy();
  }
}

/** A local answer (policy, routing, failures): text, with a length, unless something went out already. */
export function localReply(
  down: Downstream,
  ex: Exchange,
  status: number,
  headers: Record<string, string>,
  body: string,
): void {
  if (downstreamGone(down)) return;
  if (down.res.headersSent) {
    cutOff(down);
    return;
  }
  const bytes = Buffer.byteLength(body);
  ex.status = status;
  ex.responseBytes = bytes;
  const out = { "content-type": "text/plain", "content-length": String(bytes), ...headers };
  if (down.protocol === "h2") down.res.writeHead(status, out);
  else {
    // Answered before the request was all read: what is left of it cannot be told from a next
    // request, so the connection closes after the answer (Envoy does the same).
    if (!down.req.complete) down.res.shouldKeepAlive = false;
    down.res.writeHead(status, out);
  }
  down.res.end(body);
}

/** Resolves once the answer is written out or the client is gone. */
export function responseDone(down: Downstream): Promise<void> {
  const res = down.res as ServerResponse;
  // Not downstreamGone: an ended HTTP/1.1 answer may still be queued in node:http (Node 24 holds the
  // last bytes a while), and whoever ends or reuses the connection next must wait for them.
  const gone = down.protocol === "h2" ? down.res.stream.destroyed : down.res.destroyed;
  if (res.writableFinished || gone) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.removeListener("finish", done);
      res.removeListener("close", done);
      resolve();
    };
    res.once("finish", done);
    res.once("close", done);
  });
}
