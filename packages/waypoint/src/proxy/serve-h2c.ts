// The HTTP/2 side of a tunnel (h2c prior knowledge, gRPC): a node:http2 server over the HBONE stream
// hands each request stream to the request stages. Extended CONNECT (RFC 8441) is not offered —
// SETTINGS_ENABLE_CONNECT_PROTOCOL stays 0, so a conforming client never sends `:protocol` and
// nghttp2 resets a stream that does — and a plain CONNECT is answered 403 by the stages: the
// waypoint applies L7 policy to requests and opens no raw tunnels inside a tunnel.

import {
  createServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from "node:http2";
import type { Duplex } from "node:stream";
import { type HttpContext, handleHttp } from "./http.js";
import type { StreamInfo } from "./request/exchange.js";
import { asByteStream } from "./stream-adapter.js";

/**
 * `maxConcurrentStreams`: what the session advertises (SETTINGS_MAX_CONCURRENT_STREAMS). Inside the
 * mesh the HBONE session's guard bounds a peer already; an ingress gateway's client is anyone, so
 * it advertises a bound of its own (nghttp2 then refuses streams past it).
 */
export function serveH2c(
  ctx: HttpContext,
  info: StreamInfo,
  tunnel: Duplex,
  opts: { maxConcurrentStreams?: number } = {},
): void {
  const settings = {
    enableConnectProtocol: false,
    ...(opts.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: opts.maxConcurrentStreams } : {}),
  };
  const server = createServer({ settings }, (req, res) => handle(ctx, info, req, res));
  // Without this listener node:http2 answers a CONNECT 405 itself, unseen by policy and telemetry.
  server.on("connect", (req: Http2ServerRequest, res: Http2ServerResponse) => handle(ctx, info, req, res));
  // A session with no frames either way for the stream idle bound is closed (GOAWAY): each request
  // stream has its own clock, this one bounds a silent client.
  server.setTimeout(ctx.bounds.streamIdleMs);
  server.on("timeout", (session: ServerHttp2Session) => session.close());
  server.emit("connection", asByteStream(tunnel));
}

function handle(ctx: HttpContext, info: StreamInfo, req: Http2ServerRequest, res: Http2ServerResponse): void {
  handleHttp(ctx, info, { protocol: "h2", req, res }).catch((err) => {
    ctx.logger.error({ err: (err as Error).message }, "h2 request handler failed");
    if (!res.stream.destroyed) res.stream.close();
  });
}
