// One HTTP/2 attempt (h2c, gRPC) over the endpoint's pooled sessions (upstream-h2-sessions.ts): a
// stream with the request headers, the body as it streams (gRPC client and bidirectional streaming
// need that), and the first of — the response headers, a failure (connect, refused or reset stream,
// session gone), or the attempt's signal.

import { constants, type IncomingHttpHeaders } from "node:http2";
import { type AmbientError, hasCode, WaypointErrorCode } from "@ambient/core";
import { waypointError } from "../errors.js";
import type { UpstreamH2Sessions } from "../upstream-h2-sessions.js";
import type { AttemptResult, Sender } from "./attempt.js";

/** Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2); `host` becomes :authority. */
const H2_FORBIDDEN = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
]);

export function h2Sender(sessions: UpstreamH2Sessions): Sender {
  return async (endpoint, request, body, signal, opts) => {
    if (opts.fresh) sessions.dropIdle(endpoint, endpoint.connections);
    if (signal.aborted)
      return { ok: false, error: signal.reason as AmbientError, facts: { reset: true }, stale: false };
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers))
      if (!H2_FORBIDDEN.has(k) && !k.startsWith(":")) headers[k] = v;
    let opened: Awaited<ReturnType<UpstreamH2Sessions["request"]>>;
    try {
      opened = await sessions.request(endpoint, endpoint.connections, {
        ...headers,
        [constants.HTTP2_HEADER_METHOD]: request.method,
        [constants.HTTP2_HEADER_PATH]: request.path,
        [constants.HTTP2_HEADER_SCHEME]: "http",
        [constants.HTTP2_HEADER_AUTHORITY]: request.authority,
      });
    } catch (err) {
      if (hasCode(err, WaypointErrorCode.UPSTREAM_CONNECT))
        return { ok: false, error: err as AmbientError, facts: { connectFailure: true }, stale: false };
      // The pooled session refused new streams (GOAWAY between our check and the request): the app
      // never saw this one.
      const error = waypointError(
        WaypointErrorCode.UPSTREAM_RESET,
        `upstream HTTP/2 session closed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
      return { ok: false, error, facts: { refusedStream: true }, stale: true };
    }
    const { stream, reused } = opened;
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const settle = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        body.removeListener("failed", onBodyFailed);
        resolve(result);
      };
      const cancel = () => {
        body.detach(stream);
        if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      };
      const fail = (error: AmbientError) => {
        cancel();
        settle({ ok: false, error, facts: { reset: true }, stale: false });
      };
      const onAbort = () => fail(signal.reason as AmbientError);
      const onBodyFailed = (err: Error) =>
        fail(waypointError(WaypointErrorCode.DOWNSTREAM_CLOSED, err.message));
      stream.on("error", () => {});
      stream.once("response", (h: IncomingHttpHeaders, flags: number) => {
        const status = Number(h[constants.HTTP2_HEADER_STATUS] ?? 502);
        // A trailers-only answer carries grpc-status in its headers, with END_STREAM.
        const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        const grpcStatus = endStream && h["grpc-status"] !== undefined ? Number(h["grpc-status"]) : undefined;
        settle({
          ok: true,
          response: {
            status,
            headers: h,
            body: stream,
            onTrailers: (listener) => stream.once("trailers", listener),
            ...(grpcStatus !== undefined ? { grpcStatus } : {}),
            discard: cancel,
          },
        });
      });
      stream.once("close", () => {
        if (settled) return;
        body.detach(stream);
        // REFUSED_STREAM (RFC 9113 §8.7): the app did not process it, so it is safe to send again —
        // this is also how a stream above a GOAWAY's last-stream-id ends.
        const refused = stream.rstCode === constants.NGHTTP2_REFUSED_STREAM;
        // A pooled session that died under the stream (the tunnel ended) is stale; an app that reset
        // one stream on a live session meant it.
        const session = stream.session;
        const sessionGone = session === undefined || session.destroyed || session.closed;
        const error = waypointError(
          WaypointErrorCode.UPSTREAM_RESET,
          refused ? "upstream refused the stream" : `upstream reset the stream (code ${stream.rstCode})`,
        );
        settle({
          ok: false,
          error,
          facts: refused ? { refusedStream: true } : { reset: true },
          stale: refused || (reused && sessionGone),
        });
      });
      if (signal.aborted) return onAbort();
      if (body.failure) return onBodyFailed(body.failure);
      signal.addEventListener("abort", onAbort, { once: true });
      body.once("failed", onBodyFailed);
      body.attach(stream);
    });
  };
}
