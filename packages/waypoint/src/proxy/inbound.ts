// A CONNECT stream arriving at the waypoint's 15008: answer 200 (policy is applied per request,
// inside), then detect the protocol (sniff.ts) — HTTP/1.1 (with Upgrade/WebSocket), HTTP/2 prior
// knowledge (h2c, gRPC), or anything else as opaque TCP (tcp.ts).

import { createServer as createHttp1Server, type IncomingMessage } from "node:http";
import { createServer as createH2cServer, type ServerHttp2Stream } from "node:http2";
import type { Duplex } from "node:stream";
import { type HboneRequest, type Logger, respondStatus } from "@ambient/core";
import { copyBidirectional } from "@ambient/dataplane";
import { type HttpContext, handleHttp, type StreamInfo } from "./http.js";
import { type SniffOptions, sniff } from "./sniff.js";
import { asByteStream } from "./stream-adapter.js";
import { openUpstream } from "./upstream.js";

export interface InboundContext extends HttpContext {
  /** The original destination of a tunnel, or why the waypoint refuses it. */
  describe(req: HboneRequest): StreamInfo | { refuse: number; reason: string };
  /**
   * Opaque TCP: forwarded to the destination with L4 policy only. `head` holds the bytes protocol
   * detection read; they go upstream before the rest of `stream`.
   */
  tcp(stream: Duplex, info: StreamInfo, head: Buffer, req: HboneRequest): void;
  logger: Logger;
  /** Protocol detection bounds (defaults in sniff.ts). */
  sniff?: SniffOptions;
}

export function handleTunnel(ctx: InboundContext, stream: ServerHttp2Stream, req: HboneRequest): void {
  const info = ctx.describe(req);
  if ("refuse" in info) {
    ctx.logger.info(
      { authority: req.authority, peer: req.peerIdentity.toString(), reason: info.reason },
      "tunnel refused",
    );
    respondStatus(stream, info.refuse);
    return;
  }
  respondStatus(stream, 200);
  void sniff(stream, ctx.sniff).then((detected) => {
    if (!detected) return;
    if (detected.protocol === "tcp") {
      ctx.logger.debug(
        { authority: req.authority, because: detected.because, bytes: detected.head.length },
        "opaque TCP",
      );
      return ctx.tcp(stream, info, detected.head, req);
    }
    // Decided on bytes, so 'end' has not been emitted and the head can go back in front.
    stream.unshift(detected.head);
    if (detected.protocol === "h2") return serveH2c(ctx, info, stream);
    serveHttp1(ctx, info, stream);
  });
}

function serveHttp1(ctx: InboundContext, info: StreamInfo, stream: ServerHttp2Stream): void {
  // One server object per tunnel: cheap (nothing listens), and the closure carries who is calling.
  const server = createHttp1Server({ keepAlive: true }, (req, res) => {
    handleHttp(ctx, info, req, res).catch((err) => {
      ctx.logger.warn({ err: (err as Error).message }, "request failed");
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // The tunnel carries half-closes faithfully: a client that ends its side after the request (as
  // our SOCKS5 client and many scripts do) must still get its answer, not an aborted request.
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    upgrade(ctx, info, req, socket, head),
  );
  server.emit("connection", asByteStream(stream));
}

function serveH2c(ctx: InboundContext, info: StreamInfo, stream: ServerHttp2Stream): void {
  const server = createH2cServer((req, res) => {
    handleHttp(ctx, info, req as unknown as IncomingMessage, res as never).catch((err) => {
      ctx.logger.warn({ err: (err as Error).message }, "h2 request failed");
      res.stream.close();
    });
  });
  server.emit("connection", asByteStream(stream));
}

/** WebSocket and other Upgrade requests: forwarded as-is, then bytes both ways. */
function upgrade(
  ctx: InboundContext,
  info: StreamInfo,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
): void {
  const stages = ctx.stages();
  const picked = stages.pick(
    { ...requestFor(req, info) },
    { host: info.destination.host, port: info.destination.port },
  );
  if (!picked.ok) {
    client.end(`HTTP/1.1 ${picked.status} ${picked.reason}\r\ncontent-length: 0\r\n\r\n`);
    return;
  }
  openUpstream(ctx.upstream, picked.endpoint, {})
    .then((up) => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) up.write(head);
      void copyBidirectional(client, up);
      picked.endpoint.done({ status: 101 });
    })
    .catch((err) => {
      picked.endpoint.done({ connectFailure: true });
      client.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n`);
      ctx.logger.info({ err: (err as Error).message }, "upgrade failed");
    });
}

function requestFor(req: IncomingMessage, info: StreamInfo) {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return {
    method: req.method ?? "GET",
    scheme: "http",
    authority: (req.headers.host ?? "").toLowerCase(),
    path: req.url ?? "/",
    headers,
    port: info.destination.port,
    protocol: "http/1.1" as const,
    source: { ip: info.sourceIp, principal: info.sourcePrincipal },
    destination: info.destination,
  };
}
