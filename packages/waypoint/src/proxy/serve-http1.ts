// The HTTP/1.1 side of a tunnel: a node:http server parses the client's requests off the HBONE
// stream and hands each to the request stages. Upgrade requests are ordinary requests here (no
// 'upgrade' listener, so node:http keeps parsing the connection after a refused one); CONNECT is
// answered 403 through the same stages. Every phase is bounded: the next request's headers, the
// idle time between requests, and (in the stages) each request's streams.

import { createServer, type IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { type HttpContext, handleHttp } from "./http.js";
import { buildRequest } from "./request/build.js";
import { classify, RequestErrorCode, requestError } from "./request/errors.js";
import { Exchange, type StreamInfo } from "./request/exchange.js";
import { asByteStream, type ByteStream } from "./stream-adapter.js";

export function serveHttp1(ctx: HttpContext, info: StreamInfo, tunnel: Duplex): void {
  const socket = asByteStream(tunnel);
  // One server object per tunnel: cheap (nothing listens), and the closure carries who is calling.
  const server = createServer(
    { keepAlive: true, keepAliveTimeout: ctx.bounds.downstreamIdleMs },
    (req, res) => {
      track.started(res);
      run(ctx, info, handleHttp(ctx, info, { protocol: "http1", req, res, socket }), res);
    },
  );
  // The tunnel carries half-closes faithfully: a client that ends its side after the request (as
  // our SOCKS5 client and many scripts do) must still get its answer, not an aborted request.
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // node:http gives a CONNECT the raw socket; it is answered like any refused request, then closed.
  server.on("connect", (req: IncomingMessage, raw: Duplex) => {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(raw as never);
    res.once("finish", () => raw.end());
    run(ctx, info, handleHttp(ctx, info, { protocol: "http1", req, res }), res);
  });
  const track = headerDeadline(ctx, info, socket);
  server.emit("connection", socket);
}

function run(ctx: HttpContext, _info: StreamInfo, handling: Promise<void>, res: ServerResponse): void {
  handling.catch((err) => {
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
    const err = requestError(
      RequestErrorCode.REQUEST_HEADERS_TIMEOUT,
      `no complete request headers within ${ctx.bounds.requestHeadersMs} ms`,
    );
    const c = classify(err);
    const ex = new Exchange(
      buildRequest({ method: "", url: "", headers: {}, httpVersionMajor: 1 }, info).l7,
      info,
    );
    ex.status = c.status;
    ex.flag = c.flag;
    ex.error = err.message;
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
      res.once("close", () => {
        inFlight--;
        if (inFlight === 0 && !socket.destroyed) arm();
      });
    },
  };
}
