// An ingress gateway's listeners: one TCP listener on the pod IP per port of the plan, opened and
// closed as the plan changes. A connection goes through named phases:
//   plaintext port: detect HTTP/1.1 or h2c (proxy/sniff.ts) → the request stages;
//   TLS port: read the ClientHello's SNI without consuming it (client-hello.ts) → pick the server
//   whose hosts cover it (no server: closed) → PASSTHROUGH: route by SNI (tls-routes.ts) and copy
//   the still-encrypted bytes to the destination over HBONE, with L4 policy; SIMPLE: terminate TLS
//   with that server's certificate (no usable certificate: closed), ALPN h2 or http/1.1 → the
//   request stages, with the SNI on the request so the Host must belong to the same server.
// Every refusal is one debug or warn line naming the client and why; nothing here throws.

import { createServer, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { classify, type Logger } from "@ambient/core";
import type { HttpContext, StreamInfo } from "../proxy/http.js";
import type { Upstream } from "../proxy/request/exchange.js";
import { serveH2c } from "../proxy/serve-h2c.js";
import { serveHttp1 } from "../proxy/serve-http1.js";
import { type SniffOptions, sniff } from "../proxy/sniff.js";
import { forwardTcp, type TcpContext } from "../proxy/tcp.js";
import { parseClientHello } from "./client-hello.js";
import type { Credential } from "./credentials.js";
import { credentialKey, type IngressPlan, type IngressPort, serverFor } from "./plan.js";
import type { TlsDestination, TlsRoutes } from "./tls-routes.js";

/** A client has this long to send its ClientHello and finish the handshake (Envoy's listener default 15 s). */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Streams one client's HTTP/2 session may hold open at once (Envoy's gateways: 100 by default in most distributions). */
export const MAX_CONCURRENT_STREAMS = 100;
/** A ClientHello fits in one record: 5 bytes of header and at most 16 KiB + 256 of body. */
const MAX_HELLO_BYTES = 5 + 16_384 + 256;

export interface IngressServing {
  plan: IngressPlan;
  credentials: Map<string, Credential>;
  tlsRoutes: TlsRoutes;
}

export interface IngressListenerContext {
  ip: string;
  podNamespace: string;
  http: HttpContext;
  tcp: TcpContext;
  logger: Logger;
  sniff?: SniffOptions;
  /** Metric labels of requests this gateway sends (reporter, itself as the source, the upstream picked). */
  labels: (upstream?: Upstream) => StreamInfo["labels"];
}

export class IngressListeners {
  private readonly servers = new Map<number, Server>();
  /** Every accepted client connection, so close() can end them (server.close() only stops accepting). */
  private readonly sockets = new Set<Socket>();
  private serving: IngressServing | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly ctx: IngressListenerContext) {}

  /** Follows the plan: new ports opened, gone ports closed (their open connections finish). */
  update(serving: IngressServing): Promise<void> {
    this.serving = serving;
    this.reconciling = this.reconciling.then(() => this.reconcile());
    return this.reconciling;
  }

  ports(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  /** Stops listening and ends every open connection (a held keep-alive would otherwise keep it open). */
  async close(): Promise<void> {
    this.closed = true;
    await this.reconciling;
    const closing = [...this.servers.values()].map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closing);
    this.servers.clear();
  }

  private async reconcile(): Promise<void> {
    if (this.closed || !this.serving) return;
    const wanted = new Set(this.serving.plan.ports.map((p) => p.port));
    for (const [port, server] of this.servers) {
      if (wanted.has(port)) continue;
      this.servers.delete(port);
      server.close();
      this.ctx.logger.info({ port }, "ingress listener closed");
    }
    for (const port of wanted) {
      if (this.servers.has(port)) continue;
      const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket, port));
      try {
        await listen(server, this.ctx.ip, port);
        this.servers.set(port, server);
        this.ctx.logger.info({ address: `${this.ctx.ip}:${port}` }, "ingress listener open");
      } catch (err) {
        this.ctx.logger.error(
          { port, err: (err as Error).message },
          `cannot listen on ${this.ctx.ip}:${port}`,
        );
      }
    }
  }

  private accept(socket: Socket, portNumber: number): void {
    socket.on("error", () => {}); // each phase reports its own failure; a reset client is not an error
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    const port = this.serving?.plan.ports.find((p) => p.port === portNumber);
    if (!port) {
      socket.destroy();
      return;
    }
    const info: StreamInfo = {
      sourceIp: socket.remoteAddress ?? "",
      sourceAddress: `${socket.remoteAddress}:${socket.remotePort}`,
      sourcePrincipal: "",
      destination: { host: this.ctx.ip, ip: this.ctx.ip, port: portNumber },
      labels: this.ctx.labels(),
      labelsFor: (upstream) => this.ctx.labels(upstream),
    };
    if (port.tcp) this.acceptTcp(socket, port, info);
    else if (port.tls) void this.acceptTls(socket, port, info);
    else this.serveHttp(socket, info);
  }

  /** Plaintext: HTTP/1.1 or HTTP/2 with prior knowledge (gRPC); anything else is refused. */
  private serveHttp(stream: Duplex, info: StreamInfo, alpn?: string): void {
    if (alpn !== undefined) {
      if (alpn === "h2")
        serveH2c(this.ctx.http, info, stream, { maxConcurrentStreams: MAX_CONCURRENT_STREAMS });
      else serveHttp1(this.ctx.http, info, stream);
      return;
    }
    void sniff(stream, this.ctx.sniff).then((detected) => {
      if (!detected) return;
      if (detected.protocol === "tcp") {
        this.refuse(stream, info, `not HTTP (${detected.because})`);
        return;
      }
      stream.unshift(detected.head);
      if (detected.protocol === "h2")
        serveH2c(this.ctx.http, info, stream, { maxConcurrentStreams: MAX_CONCURRENT_STREAMS });
      else serveHttp1(this.ctx.http, info, stream);
    });
  }

  /** TCP server: routed by port alone (VirtualService `tcp:`), the bytes copied untouched. */
  private acceptTcp(socket: Socket, port: IngressPort, info: StreamInfo): void {
    const to = this.serving?.tlsRoutes.routeTcp(port.port);
    if (!to) {
      this.refuse(socket, info, `no VirtualService tcp route for port ${port.port}`);
      return;
    }
    this.passOn(socket, info, Buffer.alloc(0), to, `${this.ctx.ip}:${port.port}`);
  }

  /** An undecrypted connection to a routed destination, with L4 policy (proxy/tcp.ts). */
  private passOn(
    socket: Socket,
    info: StreamInfo,
    head: Buffer,
    to: TlsDestination,
    authority: string,
  ): void {
    forwardTcp(this.ctx.tcp, socket, { ...info, destination: { ...info.destination, host: to.host } }, head, {
      address: info.sourceIp,
      port: socket.remotePort ?? 0,
      identity: "",
      authority,
      mtls: false,
      target: { host: to.host, port: to.port },
      end: (s, err) => (classify(err).end === "close" ? s.end() : s.destroy()),
    });
  }

  private async acceptTls(socket: Socket, port: IngressPort, info: StreamInfo): Promise<void> {
    const hello = await readClientHello(socket);
    if (hello.kind !== "hello") {
      this.refuse(socket, info, hello.reason);
      return;
    }
    const serving = this.serving;
    const server = serverFor(port, hello.serverName);
    if (!serving || !server) {
      this.refuse(socket, info, `no server on port ${port.port} for SNI ${hello.serverName ?? "(none)"}`);
      return;
    }
    if (server.tls?.mode === "PASSTHROUGH") {
      const to = serving.tlsRoutes.route(hello.serverName, port.port);
      if (!to) {
        this.refuse(socket, info, `no VirtualService tls route for SNI ${hello.serverName ?? "(none)"}`);
        return;
      }
      this.passOn(socket, info, hello.head, to, `${hello.serverName}:${port.port}`);
      return;
    }
    const key = credentialKey(server, this.ctx.podNamespace);
    const credential = key ? serving.credentials.get(key) : undefined;
    if (!credential) {
      this.refuse(socket, info, `Secret ${key} is missing or unusable`, "warn");
      return;
    }
    const tls = new TLSSocket(replayed(hello.head, socket), {
      isServer: true,
      secureContext: credential.context,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    tls.on("error", (err) => {
      this.ctx.logger.debug({ client: info.sourceAddress, err: err.message }, "TLS handshake failed");
      tls.destroy();
    });
    const timer = setTimeout(() => tls.destroy(), HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    tls.once("secure", () => {
      clearTimeout(timer);
      const alpn = typeof tls.alpnProtocol === "string" ? tls.alpnProtocol : "http/1.1";
      this.serveHttp(
        tls,
        { ...info, tls: { ...(hello.serverName ? { serverName: hello.serverName } : {}) } },
        alpn,
      );
    });
  }

  private refuse(stream: Duplex, info: StreamInfo, reason: string, level: "debug" | "warn" = "debug"): void {
    this.ctx.logger[level](
      { client: info.sourceAddress, port: info.destination.port, reason },
      "ingress connection refused",
    );
    stream.destroy();
  }
}

type HelloRead = { kind: "hello"; serverName?: string; head: Buffer } | { kind: "refused"; reason: string };

/** Reads until the ClientHello is complete, keeping every byte for the TLS stack or the upstream. */
function readClientHello(socket: Socket): Promise<HelloRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (r: HelloRead) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const head = Buffer.concat(chunks, length);
      const parsed = parseClientHello(head);
      if (parsed.kind === "hello")
        done({ kind: "hello", ...(parsed.serverName ? { serverName: parsed.serverName } : {}), head });
      else if (parsed.kind === "not-tls") done({ kind: "refused", reason: parsed.reason });
      else if (length > MAX_HELLO_BYTES)
        done({ kind: "refused", reason: "no complete ClientHello in 16 KiB" });
    };
    const onEnd = () => done({ kind: "refused", reason: "closed before a ClientHello" });
    const timer = setTimeout(
      () => done({ kind: "refused", reason: `no ClientHello within ${HANDSHAKE_TIMEOUT_MS} ms` }),
      HANDSHAKE_TIMEOUT_MS,
    );
    timer.unref();
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("close", onEnd);
  });
}

/**
 * The socket with `head` (the ClientHello read already) in front, as a plain Duplex. A TLSSocket
 * over a net.Socket reads its native handle directly and would never see bytes unshifted in
 * JavaScript; over any other Duplex it reads through the stream, head first.
 */
function replayed(head: Buffer, socket: Socket): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  stream.push(head);
  socket.on("data", (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  return stream;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
