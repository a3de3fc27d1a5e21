// One ztunnel: the node's proxy. Wires xDS (ProxyState), certificates, the HBONE client pool and,
// for every enrolled pod on this node, its listeners; plus admin, metrics and readiness. Local
// mode takes its pods from xDS (workloads on this node with tunnel protocol HBONE); in-pod mode
// (--inpod-uds) serves the pods the node agent announces, in their own network namespaces, with
// identities and policies still from xDS.

import type { Server } from "node:http";
import {
  createLogger,
  createRegistry,
  type DeltaAdsClient,
  Drain,
  type DrainResult,
  HboneClientPool,
  ipText,
  type Logger,
  ProxyErrorCode,
  type Registry,
  routeGrpcLogs,
  SpiffeId,
  type Workload,
} from "@ambient/core";
import {
  AccessLog,
  CertificateManager,
  ControlPlaneChannel,
  createAdminServer,
  createMetricsServer,
  createReadinessServer,
  ProxyState,
  principalOf,
  startXdsClient,
  TcpMetrics,
  xdsNotSynced,
} from "@ambient/dataplane";
import type { ZtunnelConfig } from "./config.js";
import { DnsProxy } from "./dns/server.js";
import { AgentClient } from "./inpod/agent-client.js";
import { type Connection, compareConnections } from "./proxy/connections.js";
import { proxyError } from "./proxy/errors.js";
import type { InboundContext } from "./proxy/inbound.js";
import type { OutboundContext } from "./proxy/outbound.js";
import { PodListeners } from "./proxy/pod-listeners.js";
import { Router } from "./proxy/resolve.js";
import { LocalSocketFactory, type SocketFactory } from "./proxy/socket-factory.js";
import { evaluate, explain } from "./rbac/index.js";

/** A connection from a pod whose first certificate is still being issued waits this long. */
const CERTIFICATE_WAIT_MS = 10_000;

/** Logged once when the ztunnel first becomes ready (see announceReady). */
export const READY_MESSAGE = "ztunnel ready";
const READY_POLL_MS = 50;

export interface ZtunnelDeps {
  logger?: Logger;
  sockets?: SocketFactory;
  /** Called after POST /quitquitquit has drained and stopped the ztunnel (the binary exits). */
  onQuit?: () => void;
}

export class Ztunnel {
  readonly state = new ProxyState();
  readonly registry: Registry;
  readonly certs: CertificateManager;
  readonly drain = new Drain();
  private readonly controlPlane: ControlPlaneChannel;
  private readonly pool: HboneClientPool;
  private readonly pods = new Map<string, PodListeners>();
  private readonly open = new Set<Connection>();
  private readonly httpServers: Server[] = [];
  private xds: DeltaAdsClient | undefined;
  /** In-pod mode: the node agent telling us which pods are enrolled and where their netns are. */
  private agent: AgentClient | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly inbound: InboundContext;
  private readonly outbound: OutboundContext;
  private readonly dns: DnsProxy | undefined;

  private constructor(
    readonly config: ZtunnelConfig,
    readonly logger: Logger,
    private readonly sockets: SocketFactory,
    private readonly onQuit: (() => void) | undefined,
  ) {
    this.registry = createRegistry();
    this.controlPlane = new ControlPlaneChannel(config.controlPlane);
    const cp = this.controlPlane;
    this.certs = new CertificateManager({
      caAddress: config.controlPlane.caAddress,
      token: async () => (await cp.token()) ?? "",
      trustDomain: config.trustDomain,
      ttlSeconds: config.certTtlSeconds,
      logger,
      ...(cp.credentials && { credentials: cp.credentials }),
      channelOptions: cp.channelOptions,
    });
    // Tunnels are dialled through the socket factory, from the source pod's context (its address;
    // in-pod mode also its netns and SO_MARK so capture skips them).
    this.pool = new HboneClientPool({
      logger,
      connectTimeoutMs: config.connectTimeoutMs,
      createConnection: ({ host, port, localAddress }) =>
        sockets.connect(localAddress ? this.podByIp(localAddress) : undefined, { host, port }),
    });
    const telemetry = {
      metrics: new TcpMetrics(this.registry),
      accessLog: new AccessLog(logger, config.accessLog),
      drain: this.drain,
    };
    this.inbound = {
      ...telemetry,
      state: this.state,
      sockets,
      logger: logger.child({ component: "inbound" }),
      open: this.open,
      connectTimeoutMs: config.connectTimeoutMs,
    };
    this.outbound = {
      ...telemetry,
      router: new Router(this.state),
      pool: this.pool,
      certs: this.certs,
      sockets,
      logger: logger.child({ component: "outbound" }),
      open: this.open,
      clusterId: config.clusterId,
      connectTimeoutMs: config.connectTimeoutMs,
      certificateWaitMs: CERTIFICATE_WAIT_MS,
    };
    if (config.dns) {
      this.dns = new DnsProxy({
        state: this.state,
        upstream: config.dns.upstream,
        upstreamTimeoutMs: config.dns.upstreamTimeoutMs,
        registry: this.registry,
        logger: logger.child({ component: "dns" }),
      });
    }
  }

  static async start(config: ZtunnelConfig, deps: ZtunnelDeps = {}): Promise<Ztunnel> {
    const logger = deps.logger ?? createLogger({ level: config.logLevel, name: "ztunnel" });
    routeGrpcLogs(logger);
    const sockets =
      deps.sockets ??
      (config.inpodUds
        ? await inPodSocketFactory()
        : new LocalSocketFactory(config.nodeIp, config.reusePort));
    const z = new Ztunnel(config, logger.child({ node: config.nodeName }), sockets, deps.onQuit);
    await z.startServers();
    z.state.onChange((change) => {
      if (change.workloads || change.removedWorkloads.length > 0) z.scheduleReconcile();
      if (change.policies) z.recheckConnections();
    });
    z.certs.on("rotated", (id) => {
      for (const pod of z.pods.values()) if (pod.identity === id.toString()) pod.certificateRotated();
    });
    if (config.inpodUds) {
      z.agent = new AgentClient(config.inpodUds, z.logger.child({ component: "inpod" }));
      z.agent.on("changed", () => z.scheduleReconcile());
      z.agent.start();
    }
    const cp = z.controlPlane;
    z.xds = startXdsClient({
      address: config.controlPlane.xdsAddress,
      nodeName: config.nodeName,
      nodeIp: config.nodeIp,
      clusterId: config.clusterId,
      ...(config.podName && { podName: config.podName }),
      ...(config.podNamespace && { podNamespace: config.podNamespace }),
      token: () => cp.token(),
      state: z.state,
      logger,
      ...(cp.credentials && { credentials: cp.credentials }),
      channelOptions: cp.channelOptions,
    });
    z.logger.info(
      {
        ...cp.describe(),
        nodeIp: config.nodeIp,
        ...(config.dns && { dnsUpstream: `${config.dns.upstream.host}:${config.dns.upstream.port}` }),
      },
      "ztunnel started",
    );
    z.announceReady();
    return z;
  }

  /**
   * Logs READY_MESSAGE the first time readiness holds. A rollout waits for this line before it
   * stops the old ztunnel: during the overlap both answer on the (shared) readiness port, so
   * polling it cannot tell which one said yes.
   */
  private announceReady(): void {
    const timer = setInterval(() => {
      if (this.stopped) return clearInterval(timer);
      if (!this.readiness().ready) return;
      clearInterval(timer);
      this.logger.info({ pods: this.pods.size }, READY_MESSAGE);
    }, READY_POLL_MS);
    timer.unref();
  }

  /**
   * Ready when xDS has synced and every local pod has a certificate. Like Istio's ztunnel, once
   * synced it stays ready through a control plane outage: it serves from the last configuration.
   */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (!this.xds?.synced)
      reasons.push(xdsNotSynced(this.config.controlPlane.xdsAddress, this.xds, this.controlPlane.via));
    if (this.agent && !this.agent.synced)
      reasons.push(`waiting for the node agent at ${this.config.inpodUds}`);
    const missing = [...this.pods.values()].filter((p) => !this.certs.get(p.identity)).map((p) => p.identity);
    if (missing.length > 0) reasons.push(`waiting for certificates: ${[...new Set(missing)].join(", ")}`);
    if (this.drain.isDraining) reasons.push("draining");
    return { ready: reasons.length === 0, reasons };
  }

  configDump(): unknown {
    return {
      node: this.config.nodeName,
      nodeIp: this.config.nodeIp,
      xds: {
        ...this.controlPlane.describe(),
        synced: this.xds?.synced ?? false,
        ...(this.xds?.lastError && { lastError: this.xds.lastError.message }),
      },
      ...(this.agent && {
        agent: {
          socket: this.config.inpodUds,
          connected: this.agent.connected,
          synced: this.agent.synced,
          pods: [...this.agent.pods.values()],
        },
      }),
      localPods: [...this.pods.values()].map((p) => ({ ...p.ref, identity: p.identity })),
      ...this.state.snapshot(),
      certificates: this.certs.snapshot(),
      connections: {
        open: this.open.size,
        // istioctl's order: by workload, inbound before outbound.
        items: [...this.open].map((c) => c.summary()).sort(compareConnections),
        pool: this.pool.stats(),
      },
    };
  }

  /** SIGTERM: stop accepting, let open connections finish up to the deadline, then close. */
  async drainAndStop(deadlineMs = this.config.drainDeadlineMs): Promise<DrainResult> {
    this.logger.info({ open: this.open.size, deadlineMs }, "draining");
    // Stop accepting (listeners close, HBONE sessions get GOAWAY) without waiting for them: the
    // drain below is what waits, and only up to its deadline.
    for (const p of this.pods.values()) void p.stopAccepting();
    const result = await this.drain.start(deadlineMs);
    await this.stop();
    this.logger.info(result, "drained");
    return result;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.xds?.close();
    this.agent?.close();
    this.certs.close();
    for (const c of [...this.open]) c.close(proxyError(ProxyErrorCode.DRAINED, "ztunnel stopped"));
    for (const p of this.pods.values()) p.destroy();
    this.pods.clear();
    this.pool.destroy();
    this.sockets.close?.();
    await Promise.all(this.httpServers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.httpServers) s.closeAllConnections();
  }

  // ---- local pods ----

  private podByIp(ip: string) {
    for (const p of this.pods.values()) if (p.ref.ip === ip) return p.ref;
    return undefined;
  }

  private scheduleReconcile(): void {
    this.reconciling = this.reconciling
      .then(() => this.reconcilePods())
      .catch((err) => this.logger.error({ err }, "reconciling local pods failed"));
  }

  private async reconcilePods(): Promise<void> {
    if (this.stopped) return;
    const wanted = this.wantedPods();
    for (const [uid, pod] of this.pods) {
      const want = wanted.get(uid);
      const w = want?.workload;
      if (w?.addresses[0] && ipText(w.addresses[0]) === pod.ref.ip && want?.netns === pod.ref.netns) {
        pod.update(w);
        continue;
      }
      // Gone, or the same pod in another netns (a sandbox restart): the old listeners go first.
      pod.destroy();
      this.pods.delete(uid);
      this.logger.info({ pod: uid }, "pod listeners closed");
    }
    const identities = new Map<string, SpiffeId>();
    for (const { workload: w } of wanted.values())
      identities.set(principalOf(w), SpiffeId.parse(principalOf(w)));
    this.certs.setIdentities(identities.values());
    for (const [uid, { workload: w, netns }] of wanted) {
      if (this.pods.has(uid)) continue;
      const pod = new PodListeners(
        {
          inbound: this.inbound,
          outbound: this.outbound,
          certs: this.certs,
          sockets: this.sockets,
          ...(this.dns && { dns: this.dns }),
          trustDomain: this.config.trustDomain,
          handshakeTimeoutMs: this.config.handshakeTimeoutMs,
          logger: this.logger,
        },
        w,
        () => firstTargetPort(this.state.workloadByUid(uid) ?? w),
        netns,
      );
      try {
        await pod.start();
        this.pods.set(uid, pod);
        this.logger.info(
          { pod: uid, ip: pod.ref.ip, netns },
          this.dns
            ? "pod listeners open (15001, 15006, 15008, 15080, 15053)"
            : "pod listeners open (15001, 15006, 15008, 15080)",
        );
      } catch (err) {
        this.logger.error({ pod: uid, err: (err as Error).message }, "cannot serve pod");
      }
    }
  }

  /**
   * The pods this ztunnel should serve. Local mode: HBONE workloads on this node. In-pod mode: the
   * pods the agent announced that xDS knows (their identity comes from xDS); an announced pod xDS
   * does not know yet waits for it.
   */
  private wantedPods(): Map<string, { workload: Workload; netns?: string }> {
    const wanted = new Map<string, { workload: Workload; netns?: string }>();
    if (!this.agent) {
      for (const w of this.state.localWorkloads(this.config.nodeName)) {
        if (w.tunnelProtocol === "HBONE" && w.addresses.length > 0) wanted.set(w.uid, { workload: w });
      }
      return wanted;
    }
    for (const pod of this.agent.pods.values()) {
      const w =
        this.state.workloadByUid(pod.uid) ??
        this.state
          .localWorkloads(this.config.nodeName)
          .find((x) => x.namespace === pod.namespace && x.name === pod.name);
      if (!w || w.addresses.length === 0) {
        this.logger.debug({ pod: pod.uid }, "announced pod not in xDS yet; waiting");
        continue;
      }
      wanted.set(w.uid, { workload: w, netns: pod.netns });
    }
    return wanted;
  }

  /** Policy changed: close open inbound connections that it no longer allows. */
  private recheckConnections(): void {
    for (const conn of [...this.open]) {
      if (!conn.recheck) continue;
      const dest = this.state.workloadByUid(conn.recheck.destinationUid);
      if (!dest) continue;
      const decision = evaluate(this.state.policiesFor(dest), conn.recheck.facts);
      if (decision.allowed) continue;
      this.logger.info(
        { destination: dest.uid, src: conn.recheck.facts.srcIp },
        `closing connection: ${explain(decision)}`,
      );
      conn.close(proxyError(ProxyErrorCode.POLICY_CHANGED, `no longer allowed: ${explain(decision)}`));
    }
  }

  // ---- node-level HTTP ----

  private async startServers(): Promise<void> {
    const handlers = {
      configDump: () => this.configDump(),
      logger: this.logger,
      readiness: () => this.readiness(),
      registry: this.registry,
      quit: () => void this.drainAndStop().then(() => this.onQuit?.()),
    };
    const adminHost = this.config.adminOnNodeIp ? this.config.nodeIp : "127.0.0.1";
    await this.listen(createAdminServer(handlers), adminHost, this.config.adminPort);
    await this.listen(createMetricsServer(handlers), this.config.nodeIp, this.config.metricsPort);
    await this.listen(createReadinessServer(handlers), this.config.nodeIp, this.config.readinessPort);
  }

  private listen(server: Server, host: string, port: number): Promise<void> {
    this.httpServers.push(server);
    const why = (err: Error) => new Error(`cannot listen on ${host}:${port}: ${err.message}`);
    if (this.sockets.listenNode)
      return this.sockets.listenNode(server, host, port).catch((err) => Promise.reject(why(err)));
    return new Promise((resolve, reject) => {
      server.once("error", (err) => reject(why(err)));
      server.listen({ host, port }, () => resolve());
    });
  }
}

/** Loaded only in in-pod mode: it needs the native addon (setns, SO_MARK, SO_ORIGINAL_DST). */
async function inPodSocketFactory(): Promise<SocketFactory> {
  const { NetnsSocketFactory } = await import("./proxy/netns-socket-factory.js");
  return new NetnsSocketFactory();
}

function firstTargetPort(w: Workload): number | undefined {
  for (const list of Object.values(w.services))
    for (const p of list.ports) if (p.targetPort) return p.targetPort;
  return undefined;
}
