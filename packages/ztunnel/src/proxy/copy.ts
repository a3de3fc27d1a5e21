// Copies bytes both ways between two duplex streams (a TCP socket and an HBONE stream, or two
// sockets), honouring half-close: when one side ends its writes, the other side's writable is ended
// and the opposite direction keeps flowing until it ends too. Backpressure comes from pipe().

import type { Duplex } from "node:stream";

export interface CopyResult {
  /** The first error seen on either side, if any. */
  error?: Error;
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
    const finish = () => {
      if (done) return;
      done = true;
      a.destroy();
      b.destroy();
      resolve(error ? { error } : {});
    };
    const onEnd = () => {
      ended++;
      if (ended === 2) setImmediate(finish);
    };
    const onError = (err: Error) => {
      error ??= err;
      finish();
    };
    // A close without both ends (a reset, a destroyed peer) finishes the copy too.
    const onClose = () => {
      if (ended < 2) setImmediate(finish);
    };
    a.once("end", onEnd);
    b.once("end", onEnd);
    a.on("error", onError);
    b.on("error", onError);
    a.once("close", onClose);
    b.once("close", onClose);
    a.pipe(b);
    b.pipe(a);
  });
}
