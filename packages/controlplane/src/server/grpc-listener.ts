// The control plane's TCP listener in front of grpc-js: each connection must open with the HTTP/2
// client preface within a bound, or it is answered (an HTTP/1 request gets a plain-text 505 naming
// the protocol) and closed here, with one log line; gRPC connections are handed to grpc-js.

import { createServer, type Server, type Socket } from "node:net";
import { AmbientError, ErrorCode, formatHostPort, type HostPort, type Logger } from "@ambient/core";
import * as grpc from "@grpc/grpc-js";
import { ListenerErrorCode, listenerLogLevel } from "./errors.js";

/** RFC 9113 §3.4: what every prior-knowledge HTTP/2 (plaintext gRPC) client sends first. */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** A method token and a space: an HTTP/1 request line (RFC 9112 §3). */
const HTTP1_REQUEST = /^[A-Z]{3,10} /;

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

export async function listenGrpc(
  server: grpc.Server,
  address: HostPort,
  logger: Logger,
  opts: { prefaceTimeoutMs?: number } = {},
): Promise<GrpcListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const timeoutMs = opts.prefaceTimeoutMs ?? PREFACE_TIMEOUT_MS;
  const log = logger.child({ component: "grpc-listener" });
  /** Connections still waiting for their preface: grpc-js does not know them yet. */
  const waiting = new Set<Socket>();
  const tcp: Server = createServer((socket) => {
    waiting.add(socket);
    socket.once("close", () => waiting.delete(socket));
    socket.on("error", () => {});
    awaitPreface(socket, timeoutMs).then(
      () => {
        waiting.delete(socket);
        injector.injectConnection(socket);
      },
      (refusal: Refusal) => {
        log[listenerLogLevel(refusal.code)](
          { remote: `${socket.remoteAddress}:${socket.remotePort}`, code: refusal.code },
          `closing a connection to the gRPC port: ${refusal.reason}`,
        );
        if (refusal.answer) socket.end(refusal.answer);
        socket.destroySoon();
      },
    );
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

interface Refusal {
  code: string;
  reason: string;
  answer?: string;
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
  const text = head.toString("latin1");
  if (HTTP1_REQUEST.test(text)) {
    const body = "this port speaks gRPC: HTTP/2 with prior knowledge (no HTTP/1.1, no Upgrade)\n";
    return {
      code: ListenerErrorCode.HTTP1,
      reason: `an HTTP/1 request (${JSON.stringify(text.split("\r\n")[0]!.slice(0, 60))})`,
      answer: `HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    };
  }
  return {
    code: ListenerErrorCode.NOT_HTTP2,
    reason: `not HTTP/2 (first bytes ${JSON.stringify(text.slice(0, 24))})`,
  };
}
