// HTTP/2 requests (h2c, gRPC) forwarded as HTTP/2: one HTTP/2 session over an HBONE tunnel to the
// endpoint, the request body streamed (gRPC client and bidirectional streaming need that, so there
// is no buffering and no retry once bytes were sent), response headers, body and trailers
// (grpc-status) relayed as they come.

import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import {
  constants,
  connect as h2connect,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { Workload } from "@ambient/core";
import { asByteStream } from "./stream-adapter.js";
import { openUpstream, type UpstreamDeps } from "./upstream.js";

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_AUTHORITY, HTTP2_HEADER_SCHEME } = constants;

export interface H2Outcome {
  status?: number;
  connectFailure?: boolean;
  error?: string;
  responseBytes: number;
}

const H2_FORBIDDEN = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
]);

export async function forwardH2(
  deps: UpstreamDeps,
  endpoint: { workload: Workload; port: number },
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  headers: Record<string, string>,
  path: string,
  countRequestBytes: (n: number) => void,
): Promise<H2Outcome> {
  let tunnel: import("node:stream").Duplex;
  try {
    tunnel = await openUpstream(deps, endpoint, {});
  } catch (err) {
    return { connectFailure: true, error: (err as Error).message, responseBytes: 0 };
  }
  const session = h2connect(`http://${headers.host ?? "upstream"}`, {
    createConnection: () => asByteStream(tunnel) as never,
  });
  session.on("error", () => {});
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!H2_FORBIDDEN.has(k) && !k.startsWith(":")) out[k] = v;
  const upstream = session.request({
    ...out,
    [HTTP2_HEADER_METHOD]: req.method,
    [HTTP2_HEADER_PATH]: path,
    [HTTP2_HEADER_SCHEME]: "http",
    [HTTP2_HEADER_AUTHORITY]: headers.host ?? req.authority,
  });
  req.on("data", (c: Buffer) => countRequestBytes(c.length));
  req.pipe(upstream);
  return new Promise<H2Outcome>((resolve) => {
    let bytes = 0;
    let status: number | undefined;
    upstream.once("response", (h: IncomingHttpHeaders) => {
      status = Number(h[":status"] ?? 502);
      // The client may already be gone (its stream closed): nothing to answer.
      if (res.headersSent || res.stream.destroyed) return;
      const relay: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) relay[k] = v;
      res.writeHead(status, relay);
    });
    upstream.on("data", (c: Buffer) => {
      bytes += c.length;
      if (!res.stream.destroyed) res.write(c);
    });
    upstream.once("trailers", (t: IncomingHttpHeaders) => {
      const relay: Record<string, string> = {};
      for (const [k, v] of Object.entries(t))
        if (v !== undefined) relay[k] = Array.isArray(v) ? v.join(", ") : v;
      res.addTrailers(relay);
    });
    const done = (error?: string) => {
      if (!res.stream.destroyed) {
        if (!res.headersSent) res.writeHead(503);
        res.end();
      }
      session.close();
      resolve({
        ...(status !== undefined ? { status } : {}),
        ...(error ? { error } : {}),
        responseBytes: bytes,
      });
    };
    upstream.once("end", () => done());
    upstream.once("error", (err) => done(err.message));
    // The client went away: cancel upstream too.
    (res.stream as ServerHttp2Stream).once("close", () => {
      if (!upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
    });
  });
}
