// One waypoint: the L7 proxy for a Gateway of class istio-waypoint. Terminates HBONE on its pod IP,
// applies the L7 configuration the control plane sends (VirtualService, DestinationRule,
// AuthorizationPolicy, RequestAuthentication), and forwards over HBONE with its own identity.

import type { Server } from "node:http";
import type { ServerHttp2Stream } from "node:http2";
import {
  type AmbientError,
  createHboneServer,
  createLogger,
  createRegistry,
  DeltaAdsClient,
  decodeL7Resource,
  HboneClientPool,
  type HboneRequest,
  type HboneServer,
  L7_RESOURCE_TYPE_URL,
  type L7Resource,
  type Logger,
  type Registry,
  routeGrpcLogs,
  SpiffeId,
  type XdsResourceHandler,
} from "@ambient/core";
import {
  AccessLog,
  CertificateManager,
  ControlPlaneChannel,
  connectionLabels,
  createAdminServer,
  createMetricsServer,
  createReadinessServer,
  endStream,
  ProxyState,
  proxyStateHandlers,
  TcpMetrics,
  workloadIdentity,
  xdsNotSynced,
} from "@ambient/dataplane";
import type { WaypointConfig } from "./config.js";
import { IngressListeners } from "./ingress/listeners.js";
import { gatewayH2Sender } from "./ingress/stages.js";
import { L7Config } from "./l7-config.js";
import type { StreamInfo } from "./proxy/http.js";
import { handleTunnel, type InboundContext } from "./proxy/inbound.js";
import type { Upstream } from "./proxy/request/exchange.js";
import { h2Sender } from "./proxy/request/send-h2.js";
import { http1Sender } from "./proxy/request/send-http1.js";
import { forwardTcp, type TcpContext } from "./proxy/tcp.js";
import { DEFAULT_BOUNDS } from "./proxy/timeouts.js";
import { UpstreamAgents } from "./proxy/upstream-agents.js";
import { UpstreamH2Sessions } from "./proxy/upstream-h2-sessions.js";
import { servedDestination } from "./served-destination.js";
import { HttpMetrics } from "./telemetry/metrics.js";

const CONNECT_TIMEOUT_MS = DEFAULT_BOUNDS.connectMs;
/** Envoy's admin (istio-proxy) and ztunnel's listen on localhost only. */
const ADMIN_HOST = "127.0.0.1";

export class Waypoint {
  readonly state = new ProxyState();
  readonly registry: Registry = createRegistry();
  readonly certs: CertificateManager;
  readonly identity: SpiffeId;
  readonly l7: L7Config;
  private readonly pool: HboneClientPool;
  private hbone: HboneServer | undefined;
  private ingress: IngressListeners | undefined;
  private agents: UpstreamAgents | undefined;
  private sessions: UpstreamH2Sessions | undefined;
  private xds: DeltaAdsClient | undefined;
  private readonly controlPlane: ControlPlaneChannel;
  private readonly httpServers: Server[] = [];
  private stopped = false;

  private constructor(
    readonly config: WaypointConfig,
    readonly logger: Logger,
  ) {
    this.identity = SpiffeId.of(config);
    this.controlPlane = new ControlPlaneChannel(config.controlPlane);
    const cp = this.controlPlane;
    this.certs = new CertificateManager({
      caAddress: config.controlPlane.caAddress,
      token: async () => (await cp.token()) ?? "",
      trustDomain: config.trustDomain,
      logger,
      ...(cp.credentials && { credentials: cp.credentials }),
      channelOptions: cp.channelOptions,
      // In a pod the CA authenticates the waypoint's own service account token; only node proxies impersonate.
      impersonate: config.podName === undefined,
    });
    this.pool = new HboneClientPool({ logger, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    this.l7 = new L7Config(
      this.state,
      {
        name: config.name,
        namespace: config.namespace,
        ...(config.ingress ? { ingress: config.ingress } : {}),
      },
      logger,
    );
  }

  static async start(config: WaypointConfig, deps: { logger?: Logger } = {}): Promise<Waypoint> {
    const logger = (deps.logger ?? createLogger({ level: config.logLevel, name: "waypoint" })).child({
      waypoint: `${config.namespace}/${config.name}`,
    });
    routeGrpcLogs(logger);
    const w = new Waypoint(config, logger);
    w.certs.setIdentities([w.identity]);
    w.certs.on("rotated", () => w.hbone?.updateCertificate());
    await w.startServers();
    const l7Handler: XdsResourceHandler<L7Resource> = {
      typeUrl: L7_RESOURCE_TYPE_URL,
      decode: (name, bytes) => decodeL7Resource(bytes, name),
      apply: (changes) => w.l7.apply(changes),
    };
    const cp = w.controlPlane;
    const pod = config.podName ?? config.name;
    w.xds = new DeltaAdsClient({
      address: config.controlPlane.xdsAddress,
      node: {
        id: `waypoint~${config.ip}~${pod}.${config.namespace}~${config.namespace}.svc.cluster.local`,
        cluster: config.clusterId,
        metadata: { NAME: pod, NAMESPACE: config.namespace, INSTANCE_IPS: config.ip },
      },
      handlers: [...proxyStateHandlers(w.state), l7Handler as XdsResourceHandler<unknown>],
      logger,
      ...(cp.credentials && { credentials: cp.credentials }),
      channelOptions: cp.channelOptions,
      metadata: async (): Promise<Record<string, string>> => {
        const t = await cp.token();
        return t ? { authorization: `Bearer ${t}` } : {};
      },
    });
    w.xds.start();
    logger.info(
      { ...cp.describe(), ip: config.ip, identity: w.identity.toString() },
      config.ingress ? "ingress gateway started" : "waypoint started",
    );
    return w;
  }

  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (!this.xds?.synced)
      reasons.push(xdsNotSynced(this.config.controlPlane.xdsAddress, this.xds, this.controlPlane.via));
    if (!this.certs.get(this.identity)) reasons.push(`waiting for a certificate for ${this.identity}`);
    return { ready: reasons.length === 0, reasons };
  }

  configDump(): unknown {
    return {
      waypoint: `${this.config.namespace}/${this.config.name}`,
      identity: this.identity.toString(),
      xds: {
        ...this.controlPlane.describe(),
        synced: this.xds?.synced ?? false,
        ...(this.xds?.lastError && { lastError: this.xds.lastError.message }),
      },
      l7: this.l7.snapshot(),
      ...(this.ingress && { ingress: this.ingressDump() }),
      certificates: this.certs.snapshot(),
      pool: this.pool.stats(),
    };
  }

  private ingressDump(): unknown {
    const { plan, credentials } = this.l7.ingress();
    return {
      gateways: plan.gateways,
      listening: this.ingress?.ports() ?? [],
      ports: plan.ports,
      skipped: plan.skipped,
      credentials: [...credentials].map(([name, c]) => ({ name, subject: c.subject, notAfter: c.notAfter })),
    };
  }

  /** SIGTERM: stop accepting, let open tunnels finish (GOAWAY) up to the deadline, then stop. */
  async drainAndStop(deadlineMs = this.config.drainDeadlineMs): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.hbone?.closeGracefully(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    await this.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.xds?.close();
    this.certs.close();
    this.hbone?.destroy();
    await this.ingress?.close();
    this.agents?.destroy();
    this.sessions?.destroy();
    this.pool.destroy();
    await Promise.all(this.httpServers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.httpServers) s.closeAllConnections();
  }

  /**
   * An ingress gateway's requests: reported by it as their source, with its own workload, and the
   * destination it routed them to (Istio's gateway metrics: reporter="source").
   */
  private ingressLabels(upstream?: Upstream): StreamInfo["labels"] {
    const {
      request_protocol: _,
      response_flags: __,
      ...labels
    } = connectionLabels({
      reporter: "source",
      source: this.state.workloadByIp(this.config.ip),
      sourcePrincipal: this.identity.toString(),
      ...(upstream?.workload ? { destination: upstream.workload } : {}),
      ...(upstream?.service ? { service: upstream.service } : {}),
      mtls: true,
    });
    return labels;
  }

  private inboundContext(): { inbound: InboundContext; tcp: TcpContext } {
    const metrics = new HttpMetrics(this.registry);
    const upstream = {
      pool: this.pool,
      certificate: () => this.certs.get(this.identity),
      rootsPem: () => this.certs.rootsPem(),
      localAddress: this.config.ip,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    };
    this.agents?.destroy();
    this.agents = new UpstreamAgents(upstream);
    this.sessions?.destroy();
    this.sessions = new UpstreamH2Sessions(upstream);
    const tcp: TcpContext = {
      stages: () => this.l7.stages(),
      upstream,
      state: this.state,
      metrics: new TcpMetrics(this.registry),
      accessLog: new AccessLog(this.logger, this.config.accessLog),
      logger: this.logger,
    };
    const inbound: InboundContext = {
      stages: () => this.l7.stages(),
      sendHttp1: http1Sender(this.agents),
      sendH2: h2Sender(this.sessions),
      bounds: DEFAULT_BOUNDS,
      metrics,
      logger: this.logger,
      accessLog: tcp.accessLog,
      describe: (req) => this.describe(req),
      tcp: (stream, info, head, req) =>
        forwardTcp(tcp, stream, info, head, {
          address: req.remoteAddress,
          port: req.remotePort,
          identity: req.peerIdentity.toString(),
          authority: req.authority,
          mtls: true,
          end: (s, err) => endStream(s as ServerHttp2Stream, err),
        }),
      sniff: { timeoutMs: this.config.protocolDetectionTimeoutMs },
    };
    return { inbound, tcp };
  }

  /** Who is calling and where to: a service VIP or workload IP bound to this waypoint, and a port. */
  private describe(req: HboneRequest): StreamInfo | { refuse: AmbientError } {
    const served = servedDestination(this.state, this.config, req.target.address, req.authority);
    if ("refuse" in served) return served;
    const { ip, service, workload } = served;
    const peer = req.peerIdentity.toString();
    // The source workload only when the address and the verified identity agree.
    const byIp = this.state.workloadByIp(req.remoteAddress);
    const source = byIp && workloadIdentity(byIp).toString() === peer ? byIp : undefined;
    const {
      request_protocol: _,
      response_flags: __,
      ...labels
    } = connectionLabels({
      reporter: "waypoint",
      source,
      sourcePrincipal: peer,
      destination: workload,
      service,
      mtls: true,
    });
    return {
      sourceIp: req.remoteAddress,
      sourceAddress: `${req.remoteAddress}:${req.remotePort}`,
      sourcePrincipal: peer,
      destination: {
        host: service ? service.hostname : ip,
        ...(service ? { namespace: service.namespace } : workload ? { namespace: workload.namespace } : {}),
        ip,
        port: req.target.port,
      },
      labels,
    };
  }

  private async startServers(): Promise<void> {
    const { inbound: ctx, tcp } = this.inboundContext();
    if (this.config.ingress) {
      // An ingress gateway listens where its Gateways say; it takes no HBONE.
      const ingress = new IngressListeners({
        ip: this.config.ip,
        podNamespace: this.config.namespace,
        http: { ...ctx, sendH2: gatewayH2Sender(ctx.sendH2, ctx.sendHttp1) },
        tcp,
        logger: this.logger,
        sniff: ctx.sniff ?? {},
        labels: (upstream) => this.ingressLabels(upstream),
      });
      this.ingress = ingress;
      this.l7.onIngress((serving) => void ingress.update(serving));
    } else {
      this.hbone = createHboneServer({
        certificate: () => this.certs.get(this.identity),
        rootsPem: () => this.certs.rootsPem(),
        trustDomain: this.config.trustDomain,
        logger: this.logger,
        onStream: (stream, req) => handleTunnel(ctx, stream, req),
      });
      await listen(this.hbone.server, this.config.ip, 15008);
    }
    const handlers = {
      configDump: () => this.configDump(),
      logger: this.logger,
      readiness: () => this.readiness(),
      registry: this.registry,
      quit: () => void this.stop(),
    };
    // Admin changes state (log level, shutdown) and dumps config: loopback only, as Envoy's and
    // ztunnel's; metrics and readiness are for the kubelet and Prometheus, so on the pod IP.
    const adminHost = this.config.adminOnPodIp ? this.config.ip : ADMIN_HOST;
    for (const [server, host, port] of [
      [createAdminServer(handlers), adminHost, this.config.adminPort],
      [createMetricsServer(handlers), this.config.ip, 15020],
      [createReadinessServer(handlers), this.config.ip, 15021],
    ] as const) {
      this.httpServers.push(server);
      await listen(server, host, port);
    }
  }

  /** Where the admin server listens (its port is known only after listening when configured 0). */
  adminAddress(): { host: string; port: number } | undefined {
    const address = this.httpServers[0]?.address();
    return address && typeof address === "object" ? { host: address.address, port: address.port } : undefined;
  }
}

function listen(
  server: {
    listen(o: { host: string; port: number }, cb: () => void): unknown;
    once(e: "error", l: (err: Error) => void): unknown;
  },
  host: string,
  port: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`)));
    server.listen({ host, port }, () => resolve());
  });
}
