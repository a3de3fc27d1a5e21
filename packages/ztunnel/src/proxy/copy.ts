// Copies bytes both ways between two duplex streams (a TCP socket and an HBONE stream, or two
// sockets), honouring half-close: when one side ends its writes, the other side's writable is ended
// and the opposite direction keeps flowing until it ends too. A reset on one side becomes a reset
// on the other, never a clean end of data. Backpressure comes from pipe().

import { Socket } from "node:net";
import type { Duplex } from "node:stream";

export interface CopyResult {
  /** The first error seen on either side, if any. */
  error?: Error;
}

/** An HTTP/2 stream that ended because of RST_STREAM (not END_STREAM) was aborted, not finished. */
function aborted(s: Duplex): boolean {
  const h2 = s as { aborted?: boolean; rstCode?: number };
  return h2.aborted === true || (h2.rstCode ?? 0) !== 0;
}

/**
 * Resolves when both directions have finished (or either side failed; then both are destroyed).
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
      // A side that failed or vanished mid-stream is passed on as a TCP reset, as Istio's ztunnel
      // does, so the app sees the failure instead of a clean end of data.
      for (const s of [a, b]) {
        if (!clean && s instanceof Socket && !s.destroyed) s.resetAndDestroy();
        else s.destroy();
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
    a.pipe(b, { end: false });
    b.pipe(a, { end: false });
  });
}
