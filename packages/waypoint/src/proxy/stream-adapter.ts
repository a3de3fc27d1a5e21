// node:http writes the message head as latin1 strings through `_writev`; an HTTP/2 stream given to
// it directly garbles those chunks (seen: the first 16 bytes of each head replaced). Putting a plain
// Duplex in between, which turns strings into Buffers before they reach the HTTP/2 stream, keeps
// HTTP/1.1 over HBONE byte-exact in both directions.
//
// node:http destroys its socket once a response is done. Passing that on as-is would reset the
// HTTP/2 stream (RST_STREAM) before the peer has ended its side, once per request; nghttp2 on the
// other end counts those resets and, past its rapid-reset budget (~1000 in a burst), ends the whole
// session with GOAWAY INTERNAL_ERROR, failing every request on it. So a destroy without an error
// half-closes the stream and lets the peer finish (the stream then closes cleanly), with a reset
// only if the peer has not finished after CLEAN_CLOSE_GRACE_MS.

import { Duplex } from "node:stream";

/** How long a stream node:http is done with may wait for the peer's END_STREAM before a reset. */
export const CLEAN_CLOSE_GRACE_MS = 5_000;

/**
 * The adapter, plus what an HTTP/1.1 upgrade needs once the upstream answered 101: `takeOver` gives
 * back the stream underneath for raw bytes, with what had arrived but was not read yet, and
 * destroys the adapter without touching that stream (node:http never sees another byte).
 */
export interface ByteStream extends Duplex {
  takeOver(): { stream: Duplex; unread: Buffer[] };
}

export function asByteStream(inner: Duplex): ByteStream {
  let detached = false;
  const outer = new Duplex({
    allowHalfOpen: true,
    read() {
      if (!detached) inner.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (detached) return callback();
      touch();
      inner.write(chunk, callback);
    },
    final(callback) {
      if (!detached) inner.end();
      callback();
    },
    destroy(err, callback) {
      if (!detached) {
        if (err || inner.destroyed) inner.destroy(err ?? undefined);
        else closeCleanly(inner);
      }
      callback(err);
    },
  }) as ByteStream;
  const onData = (chunk: Buffer) => {
    if (!outer.push(chunk)) inner.pause();
  };
  const onEnd = () => outer.push(null);
  const onError = (err: Error) => outer.destroy(err);
  const onClose = () => {
    if (!outer.destroyed) outer.destroy();
  };
  inner.on("data", onData);
  inner.once("end", onEnd);
  inner.once("error", onError);
  inner.once("close", onClose);
  // http.Server, ClientRequest and http.Agent call these on their socket; an HTTP/2 stream has no
  // TCP options. setTimeout is real: the agent closes pooled connections idle that long.
  let idleMs = 0;
  let idle: NodeJS.Timeout | undefined;
  // On every chunk both ways: nothing to do unless an idle timeout is set.
  function touch(): void {
    if (idleMs === 0 && idle === undefined) return;
    if (idle) clearTimeout(idle);
    idle = undefined;
    if (idleMs > 0 && !outer.destroyed && !detached) {
      idle = setTimeout(() => outer.emit("timeout"), idleMs);
      idle.unref();
    }
  }
  inner.on("data", touch);
  outer.on("close", () => {
    if (idle) clearTimeout(idle);
  });
  Object.assign(outer, {
    timeout: 0,
    setNoDelay() {},
    setKeepAlive() {},
    ref() {},
    unref() {},
    setTimeout(ms: number, callback?: () => void) {
      idleMs = ms;
      (outer as unknown as { timeout: number }).timeout = ms;
      // As net.Socket: a callback is a one-off 'timeout' listener, removed again by ms = 0.
      if (callback) {
        if (ms === 0) outer.removeListener("timeout", callback);
        else outer.once("timeout", callback);
      }
      touch();
      return outer;
    },
    takeOver() {
      detached = true;
      inner.pause();
      for (const [event, listener] of [
        ["data", onData],
        ["data", touch],
        ["end", onEnd],
        ["error", onError],
        ["close", onClose],
      ] as const)
        inner.removeListener(event, listener);
      if (idle) clearTimeout(idle);
      const unread: Buffer[] = [];
      // read() also emits 'data': node:http's parser must not get these bytes.
      outer.removeAllListeners("data");
      for (let chunk = outer.read(); chunk !== null; chunk = outer.read()) unread.push(chunk as Buffer);
      outer.destroy();
      return { stream: inner, unread };
    },
  });
  return outer;
}
function closeCleanly(inner: Duplex): void {
  if (!inner.writableEnded) inner.end();
  // Nobody reads any more: drain what the peer still sends so its END_STREAM is seen.
  inner.resume();
  const timer = setTimeout(() => inner.destroy(), CLEAN_CLOSE_GRACE_MS);
  timer.unref();
  inner.once("close", () => clearTimeout(timer));
}
