// The control plane's TCP listener in front of grpc-js: each connection must open with the HTTP/2
// client preface within a bound, or it is answered (an HTTP/1 request gets a plain-text 505 naming
// the protocol) and closed here, with one log line; gRPC connections are handed to grpc-js. On the
// TLS port (Kubernetes mode) the TLS handshake comes first (tls-stage.ts), within the same bound.

import { createServer, type Server, type Socket } from "node:net";
import type { SecureContext } from "node:tls";
import { AmbientError, ErrorCode, formatHostPort, type HostPort, type Logger } from "@ambient/core";
import * as grpc from "@grpc/grpc-js";
import { http1Refusal, ListenerErrorCode, listenerLogLevel, type Refusal } from "./errors.js";
import { acceptTls } from "./tls-stage.js";

/** RFC 9113 §3.4: what every prior-knowledge HTTP/2 (plaintext gRPC) client sends first. */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Bound on a connection's first bytes: a proxy sends its preface at once. grpc-go gives a new
 * connection 120 s (ConnectionTimeout), Envoy's listener filters 15 s, Linkerd's detection 10 s.
 */
export const PREFACE_TIMEOUT_MS = 10_000;

/**
 * grpc-js server options. A ztunnel or waypoint holds one ADS stream and makes a CA call at a time,
 * ambientctl a stream or two: 100 streams per connection bounds a flood, which without a limit cost
 * 130 MB for 20,000 streams (measured; grpc-js and grpc-go leave it unlimited, Go's net/http says 250).
 * Server keepalive PINGs every 30 s with a 10 s answer bound (istiod's --keepaliveInterval and
 * --keepaliveTimeout): a peer gone silently, or a session nghttp2 already ended with GOAWAY after a
 * reset flood (Node reports neither), is dropped within 40 s.
 */
export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_concurrent_streams": 100,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
};

export interface GrpcListener {
  readonly port: number;
  /** Stops accepting and drops connections still before their preface; grpc-js closes the rest. */
  close(): void;
}

export interface ListenOptions {
  prefaceTimeoutMs?: number;
  /** Serve TLS with the current context (called per connection, so a renewed certificate applies at once). */
  tls?: () => SecureContext;
  /**
   * Connections that passed the handshake and preface are held here until this resolves, then
   * handed to grpc-js: a control plane opens its port before it has loaded and published, so
   * clients are connected when the first snapshot is ready, and no client sees a part of it.
   */
  ready?: Promise<void>;
}

export async function listenGrpc(
  server: grpc.Server,
  address: HostPort,
  logger: Logger,
  opts: ListenOptions = {},
): Promise<GrpcListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const timeoutMs = opts.prefaceTimeoutMs ?? PREFACE_TIMEOUT_MS;
  const log = logger.child({ component: "grpc-listener", tls: opts.tls !== undefined });
  /** Connections still waiting for their handshake or preface: grpc-js does not know them yet. */
  const waiting = new Set<Socket>();
  const tcp: Server = createServer((socket) => {
    waiting.add(socket);
    socket.once("close", () => waiting.delete(socket));
    socket.on("error", () => {});
    const started = Date.now();
    /** What the client talks to: the socket, or the TLS session on it once the handshake is done. */
    let stream: Socket = socket;
    const secured = opts.tls ? acceptTls(socket, opts.tls(), timeoutMs) : Promise.resolve(socket);
    secured
      .then(async (s) => {
        if (s !== socket) {
          stream = s;
          waiting.add(s);
          s.once("close", () => waiting.delete(s));
        }
        // One bound for handshake and preface together.
        await awaitPreface(s, Math.max(1, timeoutMs - (Date.now() - started)));
        if (opts.ready) await opts.ready;
        if (s.destroyed) return; // closed while held: the listener stopped, or the client gave up
        waiting.delete(socket);
        waiting.delete(s);
        injector.injectConnection(s);
      })
      .catch((refusal: Refusal) => {
        log[listenerLogLevel(refusal.code)](
          { remote: `${socket.remoteAddress}:${socket.remotePort}`, code: refusal.code },
          `closing a connection to the gRPC port: ${refusal.reason}`,
        );
        if (refusal.answer) stream.end(refusal.answer);
        stream.destroySoon();
      });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new AmbientError(
          ErrorCode.LISTEN_FAILED,
          `cannot listen on ${formatHostPort(address)}: ${err.code === "EADDRINUSE" ? "address already in use (is another control plane or `ambientctl up` running?)" : err.message}`,
          { cause: err },
        ),
      ),
    );
    tcp.listen({ host: address.host, port: address.port }, () => resolve());
  });
  return {
    port: (tcp.address() as { port: number }).port,
    close: () => {
      tcp.close();
      for (const s of waiting) s.destroy();
    },
  };
}

/**
 * Resolves once the connection's first bytes are the HTTP/2 preface, leaving them in the socket for
 * grpc-js (Node's HTTP/2 session reads what is already buffered before it takes the socket over).
 * Rejects with why not as soon as the bytes disagree with the preface.
 */
function awaitPreface(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const timer = setTimeout(
      () =>
        done({ code: ListenerErrorCode.PREFACE_TIMEOUT, reason: `no HTTP/2 preface within ${timeoutMs} ms` }),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const agreed = Math.min(head.length, PREFACE.length);
      if (!head.subarray(0, agreed).equals(PREFACE.subarray(0, agreed))) return done(refusalFor(head));
      if (head.length >= PREFACE.length) done();
    };
    const onEnd = () =>
      done({
        code: ListenerErrorCode.NOT_HTTP2,
        reason: "the client closed before sending the HTTP/2 preface",
      });
    function done(refusal?: Refusal): void {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      if (refusal) {
        reject(refusal);
        return;
      }
      socket.unshift(head);
      resolve();
    }
    socket.on("data", onData);
    socket.once("end", onEnd);
  });
}

function refusalFor(head: Buffer): Refusal {
  return (
    http1Refusal(
      head,
      ListenerErrorCode.HTTP1,
      "505 HTTP Version Not Supported",
      "this port speaks gRPC: HTTP/2 with prior knowledge (no HTTP/1.1, no Upgrade)\n",
    ) ?? {
      code: ListenerErrorCode.NOT_HTTP2,
      reason: `not HTTP/2 (first bytes ${JSON.stringify(head.toString("latin1").slice(0, 24))})`,
    }
  );
}
