// The TLS phase of the Kubernetes-mode gRPC port (istiod's 15012): the first byte must open a TLS
// handshake record, and the handshake must finish and agree on ALPN `h2` within the connection's
// bound. The decrypted socket then takes the plaintext port's path: preface check, then grpc-js.

import type { Socket } from "node:net";
import { type SecureContext, TLSSocket } from "node:tls";
import { http1Refusal, ListenerErrorCode, type Refusal } from "./errors.js";

/** RFC 8446 §5.1: ContentType handshake(22) opens every ClientHello record. */
const TLS_HANDSHAKE_RECORD = 0x16;
const H2_PREFACE_START = "PRI * HTTP/2.0";

/** Resolves with the server side of the TLS session; rejects with a Refusal. */
export function acceptTls(
  socket: Socket,
  secureContext: SecureContext,
  timeoutMs: number,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    let tlsSocket: TLSSocket | undefined;
    const timer = setTimeout(
      () =>
        done(undefined, {
          code: ListenerErrorCode.TLS_TIMEOUT,
          reason: `no TLS handshake within ${timeoutMs} ms`,
        }),
      timeoutMs,
    );
    function done(ok: TLSSocket | undefined, refusal?: Refusal): void {
      clearTimeout(timer);
      socket.off("data", onFirst);
      socket.off("end", onEnd);
      if (refusal) {
        tlsSocket?.destroy();
        reject(refusal);
      } else resolve(ok!);
    }
    const onEnd = () =>
      done(undefined, {
        code: ListenerErrorCode.NOT_TLS,
        reason: "the client closed before a TLS handshake",
      });
    const onFirst = (head: Buffer) => {
      socket.off("data", onFirst);
      socket.pause();
      if (head[0] !== TLS_HANDSHAKE_RECORD) {
        // "PRI " would pass for an HTTP/1 method: the h2 preface is a gRPC client without TLS.
        const h2c = head.toString("latin1", 0, H2_PREFACE_START.length) === H2_PREFACE_START;
        const http1 = h2c
          ? undefined
          : http1Refusal(
              head,
              ListenerErrorCode.NOT_TLS,
              "400 Bad Request",
              "this port speaks gRPC over TLS (HTTP/2, ALPN h2); plaintext gRPC is on 15010 when enabled\n",
            );
        return done(
          undefined,
          http1 ?? {
            code: ListenerErrorCode.NOT_TLS,
            reason: h2c
              ? "not a TLS handshake: plaintext HTTP/2 (a gRPC client without TLS credentials)"
              : `not a TLS handshake (first bytes ${JSON.stringify(head.toString("latin1", 0, 24))})`,
          },
        );
      }
      socket.unshift(head);
      // TLSSocket feeds what is already buffered on `socket` (the byte we peeked) to OpenSSL first.
      const t = new TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ["h2"] });
      tlsSocket = t;
      const onError = (err: NodeJS.ErrnoException) =>
        done(undefined, {
          code: ListenerErrorCode.TLS_HANDSHAKE,
          reason: `TLS handshake failed: ${err.code ?? ""} ${err.message.split("\n")[0]}`.trim(),
        });
      t.on("error", onError);
      t.once("secure", () => {
        t.off("error", onError);
        // tls.Server clears this when it emits 'secureConnection'; a TLSSocket we made ourselves
        // keeps it set, and Node's HTTP/2 session would then wait for a 'secureConnect' that only
        // clients emit, reading the buffered preface into a session with no handle yet.
        (t as unknown as { secureConnecting: boolean }).secureConnecting = false;
        // A later error (a reset mid-preface) must not be unhandled; grpc-js adds its own handling.
        t.on("error", () => {});
        if (t.alpnProtocol !== "h2") {
          return done(undefined, {
            code: ListenerErrorCode.TLS_HANDSHAKE,
            reason: "the client offered no ALPN h2 (gRPC clients do): not a gRPC client",
          });
        }
        done(t);
      });
    };
    socket.on("data", onFirst);
    socket.once("end", onEnd);
  });
}
