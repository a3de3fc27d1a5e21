// The listeners of one enrolled pod: 15001 outbound capture, 15006 inbound plaintext, 15008
// inbound HBONE, 15080 SOCKS5, and with the DNS proxy on 15053 (UDP and TCP). Created through the socket factory, so the same code serves local
// mode (pod IP on loopback) and in-pod mode (sockets inside the pod's netns).

import { createServer, type Server, type Socket } from "node:net";
import {
  classify,
  createHboneServer,
  errorMessage,
  findCode,
  type HboneServer,
  ipText,
  type Logger,
  ProxyErrorCode,
  Socks5Reply,
  SpiffeId,
  type Workload,
} from "@ambient/core";
import { type CertificateManager, endSocket, principalOf } from "@ambient/dataplane";
import { DnsListeners, type DnsProxy } from "../dns/server.js";
import { proxyError } from "./errors.js";
import { handleInboundStream, type InboundContext } from "./inbound.js";
import { handleInboundPlaintext } from "./inbound-passthrough.js";
import { handleOutbound, type OutboundContext } from "./outbound.js";
import { PORTS } from "./ports.js";
import type { PodRef, SocketFactory } from "./socket-factory.js";
import { readSocks5Request, sendSocks5Reply } from "./socks5.js";

export interface PodListenerContext {
  inbound: InboundContext;
  outbound: OutboundContext;
  certs: CertificateManager;
  sockets: SocketFactory;
  /** The DNS proxy, when enabled (--dns-proxy): every pod gets 15053. */
  dns?: DnsProxy;
  trustDomain: string;
  /** SOCKS5 greeting, TLS handshake and first CONNECT (see config.ts). */
  handshakeTimeoutMs: number;
  logger: Logger;
}

export class PodListeners {
  readonly ref: PodRef;
  private readonly servers: Server[] = [];
  private hbone: HboneServer | undefined;
  private dns: DnsListeners | undefined;
  private readonly sockets = new Set<Socket>();
  private workload: Workload;

  constructor(
    private readonly ctx: PodListenerContext,
    workload: Workload,
    /** The pod's first container port: where local-mode plaintext inbound goes (no capture). */
    private readonly plaintextPort: () => number | undefined,
    /** In-pod mode: the pod's network namespace, where its listeners are opened. */
    netns?: string,
  ) {
    this.workload = workload;
    const ip = workload.addresses[0] ? ipText(workload.addresses[0]) : "";
    this.ref = { uid: workload.uid, name: workload.name, namespace: workload.namespace, ip };
    if (netns) this.ref.netns = netns;
  }

  get identity(): string {
    return principalOf(this.workload);
  }

  /** A newer version of the same workload (labels, policies); the address is unchanged. */
  update(workload: Workload): void {
    this.workload = workload;
  }

  async start(): Promise<void> {
    const log = this.ctx.logger.child({ pod: `${this.ref.namespace}/${this.ref.name}` });
    const id = SpiffeId.parse(this.identity);
    this.hbone = createHboneServer({
      certificate: () => this.ctx.certs.get(id),
      rootsPem: () => this.ctx.certs.rootsPem(),
      trustDomain: this.ctx.trustDomain,
      logger: log,
      onStream: (stream, req) => handleInboundStream(this.ctx.inbound, this.workload, this.ref, stream, req),
      limits: { handshakeTimeoutMs: this.ctx.handshakeTimeoutMs },
    });
    const outbound = this.tcpServer((socket) => {
      const original = this.ctx.sockets.originalDestination(socket);
      if (!original) {
        log.info(
          { peer: socket.remoteAddress },
          "15001 connection without an original destination (local mode has no capture; use SOCKS5 on 15080)",
        );
        socket.resetAndDestroy();
        return;
      }
      handleOutbound(this.ctx.outbound, this.workload, this.ref, socket, original, {
        established: () => {},
        failed: (err) => endSocket(socket, err),
      });
    });
    const plaintext = this.tcpServer((socket) =>
      handleInboundPlaintext(this.ctx.inbound, this.workload, this.ref, this.plaintextPort(), socket),
    );
    const socks = this.tcpServer((socket) => {
      readSocks5Request(socket, { timeoutMs: this.ctx.handshakeTimeoutMs })
        .then((req) => {
          handleOutbound(
            this.ctx.outbound,
            this.workload,
            this.ref,
            socket,
            { host: req.host, port: req.port },
            {
              established: () => sendSocks5Reply(socket, Socks5Reply.SUCCEEDED),
              failed: (err) => sendSocks5Reply(socket, classify(err).socks5),
            },
          );
        })
        .catch((err) =>
          log[classify(err).level](
            {
              peer: `${socket.remoteAddress}:${socket.remotePort}`,
              code: findCode(err),
              err: errorMessage(err),
            },
            "SOCKS5 handshake failed",
          ),
        );
    });
    try {
      await this.ctx.sockets.listen(outbound, this.ref, PORTS.outbound);
      await this.ctx.sockets.listen(plaintext, this.ref, PORTS.inboundPlaintext);
      await this.ctx.sockets.listen(this.hbone.server, this.ref, PORTS.hbone);
      await this.ctx.sockets.listen(socks, this.ref, PORTS.socks5);
      if (this.ctx.dns) {
        this.dns = new DnsListeners(
          this.ctx.dns,
          this.ctx.sockets,
          this.ref,
          log.child({ component: "dns" }),
        );
        await this.dns.start();
      }
    } catch (err) {
      this.destroy();
      throw proxyError(
        ProxyErrorCode.UPSTREAM_CONNECT,
        `cannot open listeners for ${this.ref.namespace}/${this.ref.name} on ${this.ref.ip}: ${(err as Error).message}`,
        err,
      );
    }
  }

  /** The pod's certificate changed: new TLS handshakes on 15008 use it. */
  certificateRotated(): void {
    this.hbone?.updateCertificate();
  }

  /** Stops accepting; open connections are left to the drain. */
  async stopAccepting(): Promise<void> {
    for (const s of this.servers) s.close();
    this.dns?.close();
    await this.hbone?.closeGracefully();
  }

  destroy(): void {
    for (const s of this.servers) s.close();
    for (const s of this.sockets) s.destroy();
    this.dns?.close();
    this.hbone?.destroy();
    this.ctx.sockets.release(this.ref);
  }

  private tcpServer(onConnection: (socket: Socket) => void): Server {
    // allowHalfOpen: a client's FIN must reach the upstream as a half-close, not end our side.
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      onConnection(socket);
    });
    this.servers.push(server);
    return server;
  }
}
