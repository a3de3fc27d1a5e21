// The HBONE server: accepts mutual TLS 1.3 + HTTP/2 on 15008 (ztunnel) or a waypoint's port, learns
// the client's SPIFFE ID once per session, and hands each well-formed CONNECT to the caller, which
// authorizes it, connects upstream and answers 200/401/503. Anything else is answered or closed here;
// server-guard.ts bounds what one client can hold or flood (streams, resets, idle sessions).

import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { WorkloadCertificate } from "../ca/authority.js";
import { classify } from "../errors/classify.js";
import { errorMessage } from "../errors/errors.js";
import type { SpiffeId } from "../identity/spiffe.js";
import type { Logger } from "../telemetry/logging.js";
import { type HboneTarget, parseAuthority } from "./authority.js";
import {
  DEFAULT_SERVER_LIMITS,
  GOAWAY_LINGER_MS,
  type HboneServerLimits,
  SessionGuard,
} from "./server-guard.js";
import {
  hboneSettings,
  type KeepaliveOptions,
  MAX_SESSION_MEMORY_MB,
  startKeepalive,
  widenConnectionWindow,
} from "./settings.js";
import { describeClientTlsError } from "./tls-errors.js";
import { HBONE_ALPN, peerIdentity, serverSecureContextOptions } from "./tls-options.js";

export interface HboneRequest {
  /** `:authority` as sent: the inner destination `ip:port` or `[ipv6]:port`. */
  authority: string;
  /** `:authority` parsed; always present, since ill-formed ones are answered 400 before this. */
  target: HboneTarget;
  headers: IncomingHttpHeaders;
  /** The client's SPIFFE ID from its verified certificate (same trust domain as ours). */
  peerIdentity: SpiffeId;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  session: ServerHttp2Session;
}

export interface HboneServerOptions {
  /** Read on every new connection; undefined refuses connections until a certificate exists. */
  certificate: () => WorkloadCertificate | undefined;
  rootsPem: () => string[];
  trustDomain: string;
  logger: Logger;
  /** Must answer the stream: `respondStatus(stream, 200)` then pipe, or 401/503. */
  onStream: (stream: ServerHttp2Stream, request: HboneRequest) => void;
  keepalive?: KeepaliveOptions;
  /** Handshake, idle and per-session bounds (tests shorten them); DEFAULT_SERVER_LIMITS otherwise. */
  limits?: Partial<HboneServerLimits>;
}

export interface HboneServer {
  /** The Node server: `listen` it, or hand it to a socket factory. */
  readonly server: Http2SecureServer;
  /** Serial of the certificate new connections are offered. */
  readonly certificateSerial: string | undefined;
  readonly sessionCount: number;
  /**
   * Re-reads `certificate()` and `rootsPem()` into the server's TLS context. New handshakes use it;
   * open sessions keep theirs. A changed serial is also picked up by the next connection on its own.
   */
  updateCertificate(): void;
  /** Stops accepting, sends GOAWAY to every session and resolves when all have closed. */
  closeGracefully(): Promise<void>;
  /** Closes the listener and every connection now. */
  destroy(): void;
}

interface SessionPeer {
  identity: SpiffeId;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

export function createHboneServer(opts: HboneServerOptions): HboneServer {
  return new HboneServerImpl(opts);
}

/**
 * Answers `status` unless headers were already sent. Anything but 2xx ends the stream: an HBONE
 * refusal carries no body. Returns false when the stream could no longer be answered.
 */
export function respondStatus(
  stream: ServerHttp2Stream,
  status: number,
  headers: OutgoingHttpHeaders = {},
): boolean {
  if (stream.headersSent || stream.destroyed || stream.closed) return false;
  try {
    stream.respond({ ...headers, ":status": status }, { endStream: status < 200 || status >= 300 });
    return true;
  } catch {
    // The peer reset the stream between our check and the call.
    return false;
  }
}

class HboneServerImpl implements HboneServer {
  readonly server: Http2SecureServer;
  readonly #opts: HboneServerOptions;
  readonly #log: Logger;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #peers = new WeakMap<ServerHttp2Session, SessionPeer>();
  readonly #guards = new WeakMap<ServerHttp2Session, SessionGuard>();
  readonly #limits: HboneServerLimits;
  /** Raw TCP sockets by remote `address|port`, including ones still in the handshake. */
  readonly #sockets = new Map<string, Socket>();
  #serial: string | undefined;
  /** A certificate node:tls refused: not retried on every connection, nor logged each time. */
  #rejectedSerial: string | undefined;
  /** The TLS socket whose session Node is creating right now (see the constructor). */
  #accepting: TLSSocket | undefined;

  constructor(opts: HboneServerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: "hbone-server" });
    this.#limits = { ...DEFAULT_SERVER_LIMITS, ...opts.limits };
    const cert = opts.certificate();
    this.#serial = cert?.serial;
    this.server = createSecureServer({
      ...(cert ? serverSecureContextOptions(cert, opts.rootsPem()) : { minVersion: "TLSv1.3" }),
      requestCert: true,
      // OpenSSL still verifies the chain against our roots; peerIdentity() refuses unless it passed.
      // With `true`, Node drops a bad client with a bare TCP close (no alert, no reason in any
      // event), so neither side could say why; we answer GOAWAY with the reason instead.
      rejectUnauthorized: false,
      ALPNProtocols: HBONE_ALPN,
      allowHTTP1: false,
      settings: {
        ...hboneSettings("server"),
        maxConcurrentStreams: this.#limits.maxConcurrentStreams,
        maxHeaderListSize: this.#limits.maxHeaderListBytes,
      },
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      // A TCP connection that never finishes its handshake (or never starts one) is dropped here.
      handshakeTimeout: this.#limits.handshakeTimeoutMs,
      noDelay: true,
    });
    // Before node:tls wraps the socket, so a rotated certificate is in place for this handshake.
    this.server.prependListener("connection", (socket: Socket) => this.#onConnection(socket));
    this.server.on("session", (session: ServerHttp2Session) => this.#onSession(session));
    this.server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
      this.#onStream(stream, headers),
    );
    // Node creates the session inside its own 'secureConnection' listener and emits 'session' from
    // there, synchronously; remembering the socket first gives #onSession the TLSSocket itself
    // (`session.socket` is a proxy that throws on destroy(), end(), setNoDelay()...).
    this.server.prependListener("secureConnection", (socket: TLSSocket) => {
      this.#accepting = socket;
    });
    // One line per connection; its level comes from errors.ts (scanners and plaintext clients are
    // routine on a mesh port).
    this.server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
      const { code, text } = describeClientTlsError(err);
      this.#log[classify({ code: code }, "server").level](
        {
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
          code,
          tlsCode: (err as { code?: string }).code,
        },
        `HBONE handshake failed: ${text}`,
      );
    });
    // TLS without ALPN h2 (Node's default would answer an HTTP/1.0 403 in plaintext over TLS).
    this.server.on("unknownProtocol", (socket: TLSSocket) => {
      this.#log.debug(
        { remote: `${socket.remoteAddress}:${socket.remotePort}`, alpn: socket.alpnProtocol },
        "closing HBONE connection that did not negotiate ALPN h2",
      );
      socket.destroy();
    });
  }

  get certificateSerial(): string | undefined {
    return this.#serial;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  updateCertificate(): void {
    const cert = this.#opts.certificate();
    if (!cert) return;
    try {
      this.server.setSecureContext(serverSecureContextOptions(cert, this.#opts.rootsPem()));
      if (cert.serial !== this.#serial) {
        this.#log.debug(
          { serial: cert.serial, identity: cert.identity.toString() },
          "HBONE certificate updated",
        );
      }
      this.#serial = cert.serial;
    } catch (err) {
      // A broken key or chain must not take the listener down: keep serving the previous one.
      this.#rejectedSerial = cert.serial;
      this.#log.error(
        { err: errorMessage(err), serial: cert.serial },
        "HBONE certificate rejected by node:tls",
      );
    }
  }

  async closeGracefully(): Promise<void> {
    // The callback runs once every connection has closed (or at once with an error when the server
    // was never listening); sessions emit 'close' a tick later, so wait for both.
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const inSession = new Set<string>();
    const sessionsClosed = [...this.#sessions].map((session) => {
      const peer = this.#peers.get(session);
      if (peer) inSession.add(`${peer.remoteAddress}|${peer.remotePort}`);
      const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
      session.close();
      return closed;
    });
    // Connections still in the TLS handshake would hold close() until Node's 120 s timeout.
    for (const [key, socket] of this.#sockets) if (!inSession.has(key)) socket.destroy();
    await Promise.all([listenerClosed, ...sessionsClosed]);
  }

  destroy(): void {
    this.server.close();
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets.values()) socket.destroy();
  }

  #onConnection(socket: Socket): void {
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    this.#sockets.set(key, socket);
    socket.once("close", () => this.#sockets.delete(key));
    const cert = this.#opts.certificate();
    if (!cert) {
      this.#log.debug(
        { remote: `${socket.remoteAddress}:${socket.remotePort}` },
        "no certificate yet: closing",
      );
      socket.destroy();
      return;
    }
    if (cert.serial !== this.#serial && cert.serial !== this.#rejectedSerial) this.updateCertificate();
  }

  #onSession(session: ServerHttp2Session): void {
    const socket = this.#accepting;
    this.#accepting = undefined;
    if (!socket) {
      session.destroy();
      return;
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    let identity: SpiffeId;
    try {
      identity = peerIdentity(socket, this.#opts.trustDomain);
    } catch (err) {
      this.#refuseSession(session, socket, remote, errorMessage(err));
      return;
    }
    this.#sessions.add(session);
    session.once("close", () => this.#sessions.delete(session));
    this.#peers.set(session, {
      identity,
      localAddress: socket.localAddress ?? "",
      localPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort ?? 0,
    });
    this.#guards.set(
      session,
      new SessionGuard(session, socket, this.#limits, this.#log, { remote, identity: identity.toString() }),
    );
    widenConnectionWindow(session);
    startKeepalive(session, this.#opts.keepalive);
    this.#log.debug({ remote, identity: identity.toString() }, "HBONE session opened");
  }

  /**
   * GOAWAY with INADEQUATE_SECURITY and the reason as debug data, before any stream is processed:
   * the client's error names the reason instead of a bare reset.
   */
  #refuseSession(session: ServerHttp2Session, socket: TLSSocket, remote: string, reason: string): void {
    this.#log.info({ remote }, `refused HBONE client: ${reason}`);
    session.on("error", () => {});
    try {
      session.goaway(constants.NGHTTP2_INADEQUATE_SECURITY, 0, Buffer.from(reason.slice(0, 512)));
      session.close();
    } catch {
      socket.destroy();
      return;
    }
    setTimeout(() => socket.destroy(), GOAWAY_LINGER_MS).unref();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // Without a listener a peer's RST_STREAM would surface as an uncaught 'error'.
    stream.on("error", (err) => this.#log.debug({ err: errorMessage(err) }, "HBONE stream error"));
    const session = stream.session as ServerHttp2Session | undefined;
    const peer = session && this.#peers.get(session);
    const guard = session && this.#guards.get(session);
    if (!session || !peer || !guard) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (!guard.admit(stream)) return;
    // Handed on at the next turn: a stream the client reset within the same read (rapid reset:
    // HEADERS then RST_STREAM) is gone by then and never costs the caller an upstream connection.
    setImmediate(() => {
      if (!stream.closed && !stream.destroyed && !guard.ended) this.#dispatch(stream, headers, session, peer);
    });
  }

  #dispatch(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    session: ServerHttp2Session,
    peer: SessionPeer,
  ): void {
    const method = headers[":method"];
    if (method !== "CONNECT") {
      this.#log.debug({ method, remote: `${peer.remoteAddress}:${peer.remotePort}` }, "HBONE: not a CONNECT");
      respondStatus(stream, 405, { allow: "CONNECT" });
      return;
    }
    const authority = headers[":authority"];
    const target = parseAuthority(authority);
    // Extended CONNECT (RFC 8441, `:protocol`) tunnels another protocol, not raw TCP.
    if (!target || authority === undefined || headers[":protocol"] !== undefined) {
      this.#log.debug({ authority, identity: peer.identity.toString() }, "HBONE: bad :authority");
      respondStatus(stream, 400);
      return;
    }
    const request: HboneRequest = {
      authority,
      target,
      headers,
      peerIdentity: peer.identity,
      localAddress: peer.localAddress,
      localPort: peer.localPort,
      remoteAddress: peer.remoteAddress,
      remotePort: peer.remotePort,
      session,
    };
    try {
      this.#opts.onStream(stream, request);
    } catch (err) {
      this.#log.error({ err: errorMessage(err), authority }, "HBONE stream handler threw");
      if (!respondStatus(stream, 500)) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
  }
}
