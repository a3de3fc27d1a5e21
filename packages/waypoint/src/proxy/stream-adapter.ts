// node:http writes the message head as latin1 strings through `_writev`; an HTTP/2 stream given to
// it directly garbles those chunks (seen: the first 16 bytes of each head replaced). Putting a plain
// Duplex in between, which turns strings into Buffers before they reach the HTTP/2 stream, keeps
// HTTP/1.1 over HBONE byte-exact in both directions.

import { Duplex } from "node:stream";

export function asByteStream(inner: Duplex): Duplex {
  const outer = new Duplex({
    allowHalfOpen: true,
    read() {
      inner.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      inner.write(chunk, callback);
    },
    final(callback) {
      inner.end();
      callback();
    },
    destroy(err, callback) {
      inner.destroy(err ?? undefined);
      callback(err);
    },
  });
  inner.on("data", (chunk: Buffer) => {
    if (!outer.push(chunk)) inner.pause();
  });
  inner.once("end", () => outer.push(null));
  inner.once("error", (err) => outer.destroy(err));
  inner.once("close", () => {
    if (!outer.destroyed) outer.destroy();
  });
  // http.Server and ClientRequest call these on their socket; an HTTP/2 stream has no TCP options.
  Object.assign(outer, { setNoDelay() {}, setKeepAlive() {}, setTimeout: () => outer });
  return outer;
}
