// Copies bytes both ways between two duplex streams (a TCP socket and an HBONE stream, or two
// sockets), honouring half-close: when one side ends its writes, the other side's writable is ended
// and the opposite direction keeps flowing until it ends too. A reset on one side becomes a reset
// on the other, never a clean end of data. Backpressure comes from pipe().

import { constants } from "node:http2";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";

export interface CopyResult {
  /** The first error seen on either side, if any. */
  error?: Error;
}

interface H2StreamLike {
  readonly closed: boolean;
  readonly aborted?: boolean;
  readonly rstCode?: number;
  close(code?: number): void;
}

/** An HTTP/2 stream (client or server side): it has an RST_STREAM code and close(code). */
function asHttp2Stream(s: Duplex): (Duplex & H2StreamLike) | undefined {
  const h2 = s as Duplex & Partial<H2StreamLike>;
  return "rstCode" in h2 && typeof h2.close === "function" && "session" in h2
    ? (h2 as Duplex & H2StreamLike)
    : undefined;
}

/** An HTTP/2 stream that ended because of RST_STREAM (not END_STREAM) was aborted, not finished. */
function aborted(s: Duplex): boolean {
  const h2 = s as { aborted?: boolean; rstCode?: number };
  return h2.aborted === true || (h2.rstCode ?? 0) !== 0;
}

/**
 * Both directions ended cleanly: let each side close once its writes are through. An HTTP/2 stream
 * is left alone: END_STREAM went both ways, so nghttp2 closes it and Node destroys it. Destroying it
 * ourselves first would send RST_STREAM, which a Node (nghttp2) server counts against its
 * rapid-reset limit (a burst of 1000, then 33/s): past it the server sends GOAWAY INTERNAL_ERROR
 * and every other stream on that session fails. A socket destroyed before its last writes flushed
 * would lose them, so it goes once 'finish' says they are out.
 */
function release(s: Duplex): void {
  if (s.destroyed || asHttp2Stream(s)) return;
  if (s.writableFinished) s.destroy();
  else s.once("finish", () => s.destroy());
}

/**
 * One side failed or vanished mid-stream: passed on as a TCP reset (as Istio's ztunnel does) or as
 * RST_STREAM CANCEL for just this HTTP/2 stream, so the peer sees the failure instead of a clean end
 * of data. (A plain destroy() would send RST_STREAM NO_ERROR; destroy(err) INTERNAL_ERROR.)
 */
function abort(s: Duplex): void {
  if (s.destroyed) return;
  if (s instanceof Socket) {
    s.resetAndDestroy();
    return;
  }
  const h2 = asHttp2Stream(s);
  if (h2 && !h2.closed) {
    try {
      h2.close(constants.NGHTTP2_CANCEL);
    } catch {
      // The session went away between the check and the call: destroy() below is all there is.
    }
  }
  s.destroy();
}

/**
 * Resolves when both directions have finished (or either side failed; then both are reset).
 * Both streams must allow half-open (net sockets need `allowHalfOpen: true`).
 */
export function copyBidirectional(a: Duplex, b: Duplex): Promise<CopyResult> {
  return new Promise((resolve) => {
    let ended = 0;
    let done = false;
    let error: Error | undefined;
    const finish = (clean: boolean) => {
      if (done) return;
      done = true;
      for (const s of [a, b]) {
        if (clean) release(s);
        else abort(s);
      }
      resolve(error ? { error } : {});
    };
    // Ends are forwarded one tick late: an HTTP/2 stream emits 'end' before 'aborted' when reset.
    const forwardEnd = (from: Duplex, to: Duplex) => () =>
      setImmediate(() => {
        if (done) return;
        if (aborted(from)) return finish(false);
        ended++;
        to.end();
        if (ended === 2) finish(true);
      });
    const onError = (err: Error) => {
      error ??= err;
      finish(false);
    };
    // A close without both ends (a reset, a destroyed peer) finishes the copy too.
    const onClose = () => setImmediate(() => finish(ended === 2));
    a.once("end", forwardEnd(a, b));
    b.once("end", forwardEnd(b, a));
    a.on("error", onError);
    b.on("error", onError);
    a.once("close", onClose);
    b.once("close", onClose);
    // A side already gone (a peer reset or a session torn down while the other side was being
    // connected) emitted 'close' before anyone listened: nothing would ever finish the copy.
    if (a.destroyed || b.destroyed) {
      setImmediate(() => finish(false));
      return;
    }
    // A side that ended before the copy started (a client that finished while its first bytes were
    // being inspected) will not emit 'end' again: its end is passed on now.
    if (a.readableEnded) forwardEnd(a, b)();
    if (b.readableEnded) forwardEnd(b, a)();
    a.pipe(b, { end: false });
    b.pipe(a, { end: false });
  });
}

/** Resets after both sides finished are the normal end of an HTTP/2 stream, not failures. */
export function isBenign(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === "ERR_HTTP2_STREAM_CANCEL" || code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE";
}
