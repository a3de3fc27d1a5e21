// A CONNECT stream arriving at the waypoint's 15008: answer 200 (policy is applied per request,
// inside), then detect the protocol (sniff.ts) — HTTP/1.1 (serve-http1.ts, Upgrade included),
// HTTP/2 prior knowledge (serve-h2c.ts: h2c, gRPC), or anything else as opaque TCP (tcp.ts).

import type { ServerHttp2Stream } from "node:http2";
import { type AmbientError, classify, type HboneRequest, type Logger, respondStatus } from "@ambient/core";
import type { HttpContext, StreamInfo } from "./http.js";
import { serveH2c } from "./serve-h2c.js";
import { serveHttp1 } from "./serve-http1.js";
import { type SniffOptions, sniff } from "./sniff.js";

export interface InboundContext extends HttpContext {
  /** The original destination of a tunnel, or why the waypoint refuses it. */
  describe(req: HboneRequest): StreamInfo | { refuse: AmbientError };
  /**
   * Opaque TCP: forwarded to the destination with L4 policy only. `head` holds the bytes protocol
   * detection read; they go upstream before the rest of `stream`.
   */
  tcp(stream: ServerHttp2Stream, info: StreamInfo, head: Buffer, req: HboneRequest): void;
  logger: Logger;
  /** Protocol detection bounds (defaults in sniff.ts). */
  sniff?: SniffOptions;
}

export function handleTunnel(ctx: InboundContext, stream: ServerHttp2Stream, req: HboneRequest): void {
  const info = ctx.describe(req);
  if ("refuse" in info) {
    const { status, level } = classify(info.refuse);
    ctx.logger[level](
      {
        authority: req.authority,
        peer: req.peerIdentity.toString(),
        code: info.refuse.code,
        reason: info.refuse.message,
      },
      "tunnel refused",
    );
    respondStatus(stream, status);
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
