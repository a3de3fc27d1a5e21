// The HTTP/1.1 side of a tunnel: a node:http server parses the client's requests off the HBONE
// stream and hands each to the request stages. For an Upgrade request node:http stops parsing right
// after its head and gives us the connection: the stages run as for any request, and unless the
// upstream answered 101 the connection goes back to the parser, with the bytes that followed the
// head, so a next request (keep-alive or pipelined) is parsed and policed like the first. (Without
// that listener node:http serves the request but drops what was pipelined after it.) CONNECT is
// answered 403 by the stages. Every phase is bounded: the next request's headers, the idle time
// between requests, and (in the stages) each request's stream.

import { createServer, type IncomingMessage, type Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { classify, WaypointErrorCode } from "@ambient/core";
import { waypointError } from "./errors.js";
import { type HttpContext, handleHttp } from "./http.js";
import { buildRequest, connectionTokens, declaresBody, upgradeTokens } from "./request/build.js";
import { responseDone } from "./request/downstream.js";
import { Exchange, type StreamInfo } from "./request/exchange.js";
import { asByteStream, type ByteStream } from "./stream-adapter.js";

export function serveHttp1(ctx: HttpContext, info: StreamInfo, tunnel: Duplex): void {
  const socket = asByteStream(tunnel);
  const track = headerDeadline(ctx, info, socket);
  // One server object per tunnel: cheap (nothing listens), and the closure carries who is calling.
  const server = createServer(
    { keepAlive: true, keepAliveTimeout: ctx.bounds.downstreamIdleMs },
    (req, res) => {
      track.started(res);
      run(ctx, handleHttp(ctx, info, { protocol: "http1", req, res }), res);
    },
  );
  // The tunnel carries half-closes faithfully: a client that ends its side after the request (as
  // our SOCKS5 client and many scripts do) must still get its answer, not an aborted request.
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on("upgrade", (req: IncomingMessage, _raw: Duplex, head: Buffer) => {
    // Only h2c was asked for: Envoy drops that upgrade and so do we (build.ts says why). The request
    // goes back to the parser without it and is served as plain HTTP/1.1, body and all.
    if (upgradeTokens(req.headers).length === 0) return reparse(server, socket, [withoutUpgrade(req), head]);
    const res = ownResponse(req, socket);
    // The stages refuse an Upgrade request with a body (build.ts): where that body ends is
    // ambiguous, so no byte after its head may be parsed as a next request. Answer, then close.
    if (declaresBody(req.headers)) res.shouldKeepAlive = false;
    track.started(res);
    const upgrade = { socket, head };
    const handling = handleHttp(ctx, info, { protocol: "http1", req, res, upgrade });
    void run(ctx, handling, res)
      // An answer the stages ended (a 101 hands the connection over instead) is written out first.
      .then(() => (res.writableEnded ? responseDone({ protocol: "http1", req, res }) : undefined))
      .then(() => {
        // Switched (the tunnel has the connection now), or closed.
        if (socket.destroyed || res.destroyed) return;
        res.detachSocket(socket as never);
        if (res.shouldKeepAlive) reparse(server, socket, [head]);
        else socket.end();
      });
  });
  // node:http gives a CONNECT the raw socket; it is answered like any refused request, then closed.
  server.on("connect", (req: IncomingMessage) => {
    const res = ownResponse(req, socket);
    res.shouldKeepAlive = false;
    res.once("finish", () => socket.end());
    track.started(res);
    void run(ctx, handleHttp(ctx, info, { protocol: "http1", req, res }), res);
  });
  server.emit("connection", socket);
}

/** A response for a request node:http handed over raw (upgrade, CONNECT). */
function ownResponse(req: IncomingMessage, socket: ByteStream): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = req.httpVersionMinor === 1 && !connectionTokens(req.headers).has("close");
  res.assignSocket(socket as never);
  return res;
}

/** Hands the connection back to node:http's parser, `first` ahead of whatever arrives next. */
function reparse(server: Server, socket: ByteStream, first: Buffer[]): void {
  const bytes = Buffer.concat(first);
  if (bytes.length > 0) socket.unshift(bytes);
  server.emit("connection", socket);
}

/** The request head again, without Upgrade, HTTP2-Settings and their Connection tokens. */
function withoutUpgrade(req: IncomingMessage): Buffer {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === "upgrade" || lower === "http2-settings") continue;
    if (lower === "connection") {
      const kept = value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== "" && !["upgrade", "http2-settings"].includes(t.toLowerCase()));
      if (kept.length > 0) lines.push(`${name}: ${kept.join(", ")}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

/** Settles once the request is over, whatever happened (never rejects). */
function run(ctx: HttpContext, handling: Promise<void>, res: ServerResponse): Promise<void> {
  return handling.catch((err) => {
    // The stages answer every failure themselves; reaching here is a bug, and the client still
    // gets an answer rather than a hang.
    ctx.logger.error({ err: (err as Error).message }, "request handler failed");
    if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
    else res.destroy();
  });
}

/**
 * The request-headers bound, which node:http only enforces on servers that listen: armed while no
 * request is in flight on the connection (at its start, and once the last answer is out), cleared
 * when a request's headers are complete. A client that trickles a header line every few seconds
 * never trips the idle timeout, but trips this one.
 */
function headerDeadline(
  ctx: HttpContext,
  info: StreamInfo,
  socket: ByteStream,
): { started(res: ServerResponse): void } {
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(expire, ctx.bounds.requestHeadersMs);
    timer.unref();
  };
  const expire = () => {
    const err = waypointError(
      WaypointErrorCode.REQUEST_HEADERS_TIMEOUT,
      `no complete request headers within ${ctx.bounds.requestHeadersMs} ms`,
    );
    const c = classify(err);
    const blank = buildRequest({ method: "", url: "", headers: {}, httpVersionMajor: 1 }, info).l7;
    const ex = new Exchange(blank, info);
    ex.status = c.status;
    ex.fail(err);
    ex.record(ctx);
    socket.end(`HTTP/1.1 ${c.status} Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    socket.destroy();
  };
  arm();
  socket.once("close", () => clearTimeout(timer));
  return {
    started(res) {
      inFlight++;
      clearTimeout(timer);
      let done = false;
      // 'finish' for responses node:http made; one we made for a raw request may only 'finish'.
      const over = () => {
        if (done) return;
        done = true;
        inFlight--;
        if (inFlight === 0 && !socket.destroyed) arm();
      };
      res.once("finish", over);
      res.once("close", over);
    },
  };
}
