// The local mesh behind `ambientctl up`: the control plane on a manifests folder, one ztunnel per
// Node, and an echo server per ready Pod on each container port, all on loopback. It follows the
// folder: nodes and pods that appear, change address or go away are started, moved or stopped.

import { join } from "node:path";
import { ControlPlane, internalIp, LocalTokenAuthenticator } from "@ambient/controlplane";
import { createLogger, type Logger, type LogLevel } from "@ambient/core";
import { isIstioGateway, type KubeObject, type Node, type Pod } from "@ambient/kube";
import { parseWaypointConfig, Waypoint } from "@ambient/waypoint";
import { parseZtunnelConfig, Ztunnel, type ZtunnelDeps } from "@ambient/ztunnel";
import { EchoServer } from "./echo-server.js";

export interface LocalMeshOptions {
  dir: string;
  listen: { host: string; port: number };
  stateDir: string;
  logLevel: LogLevel;
  logger?: Logger;
  /** Tests: per-node overrides of what each ztunnel is given (e.g. a recording socket factory). */
  ztunnelDeps?: (node: string, nodeIp: string) => Partial<ZtunnelDeps>;
  /** Extra ztunnel flags per node (e.g. `--dns-proxy`). */
  ztunnelArgs?: (node: string, nodeIp: string) => string[];
}

interface RunningNode {
  ip: string;
  ztunnel: Ztunnel;
}

interface RunningPod {
  key: string;
  ip: string;
  ports: number[];
  node: string;
  server: { close(): Promise<void> };
  echo?: EchoServer;
  waypoint?: Waypoint;
  /** The waypoint binary runs as this pod's ingress gateway. */
  ingress?: boolean;
}

/** Istio's label on a waypoint's pods: they run the waypoint proxy, not an app. */
const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
const GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name";
/** A class-istio Gateway's pod (made by the control plane) runs the proxy as an ingress gateway. */
const INGRESS_CLASS = "istio";

export interface PodSummary {
  namespace: string;
  name: string;
  node: string;
  ip: string;
  ports: number[];
  serviceAccount: string;
  ambient: boolean;
  /** What runs in the pod when it is not an app: a waypoint, or an ingress gateway and its ports. */
  proxy?: { kind: "waypoint" } | { kind: "ingress-gateway"; listening: number[] };
}

export class LocalMesh {
  readonly nodes = new Map<string, RunningNode>();
  readonly pods = new Map<string, RunningPod>();
  private reconciling: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  private constructor(
    readonly cp: ControlPlane,
    private readonly opts: LocalMeshOptions,
    private readonly logger: Logger,
  ) {}

  static async start(opts: LocalMeshOptions): Promise<LocalMesh> {
    const logger = opts.logger ?? createLogger({ level: opts.logLevel, name: "ambient-local" });
    const cp = await ControlPlane.start({
      configDir: opts.dir,
      listen: opts.listen,
      stateDir: join(opts.stateDir, "controlplane"),
      trustDomain: "cluster.local",
      clusterId: "Kubernetes",
      rootNamespace: "istio-system",
      logger: logger.child({ process: "controlplane" }),
      allocateLocalAddresses: true,
    });
    const mesh = new LocalMesh(cp, opts, logger);
    mesh.unsubscribe = cp.onPublished((objects) => {
      mesh.reconciling = mesh.reconciling
        .then(() => mesh.reconcile(objects))
        .catch((err) => logger.error({ err }, "local mesh reconcile failed"));
    });
    await mesh.reconciling;
    return mesh;
  }

  /** Resolves when the last reconcile has finished and every ztunnel is ready (or timeout). */
  async settled(timeoutMs = 15_000): Promise<void> {
    await this.reconciling;
    const deadline = Date.now() + timeoutMs;
    for (const [name, n] of this.nodes) {
      for (;;) {
        const r = n.ztunnel.readiness();
        if (r.ready) break;
        if (Date.now() > deadline) throw new Error(`ztunnel on ${name} not ready: ${r.reasons.join("; ")}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    for (const [key, p] of this.pods) {
      if (!p.waypoint) continue;
      for (;;) {
        const r = p.waypoint.readiness();
        if (r.ready) break;
        if (Date.now() > deadline) throw new Error(`waypoint ${key} not ready: ${r.reasons.join("; ")}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  }

  /** The echo server standing in for a pod's app (undefined for waypoints and pods not running). */
  echo(namespace: string, name: string): EchoServer | undefined {
    return this.pods.get(`${namespace}/${name}`)?.echo;
  }

  summary(): { nodes: { name: string; ip: string }[]; pods: PodSummary[] } {
    const objects = this.cp.objects();
    const ambient = new Set(
      this.cp.snapshot.workloads
        .filter((w) => w.tunnelProtocol === "HBONE")
        .map((w) => `${w.namespace}/${w.name}`),
    );
    const nodes = [...this.nodes.entries()].map(([name, n]) => ({ name, ip: n.ip }));
    const pods = objects.filter(isPod).flatMap((p): PodSummary[] => {
      const ip = p.status?.podIP;
      if (!ip || !p.spec?.nodeName) return [];
      const ns = p.metadata.namespace ?? "default";
      const running = this.pods.get(`${ns}/${p.metadata.name}`);
      const proxy: PodSummary["proxy"] = running?.waypoint
        ? running.ingress
          ? {
              kind: "ingress-gateway",
              listening: running.waypoint.l7.ingress().plan.ports.map((x) => x.port),
            }
          : { kind: "waypoint" }
        : undefined;
      return [
        {
          namespace: ns,
          name: p.metadata.name,
          node: p.spec.nodeName,
          ip,
          ports: containerPorts(p),
          serviceAccount: p.spec.serviceAccountName ?? "default",
          ambient: ambient.has(`${ns}/${p.metadata.name}`),
          ...(proxy ? { proxy } : {}),
        },
      ];
    });
    return { nodes, pods };
  }

  private async reconcile(objects: readonly KubeObject[]): Promise<void> {
    if (this.stopped) return;
    // Nodes: one ztunnel each, on the node's address.
    const wantedNodes = new Map<string, string>();
    for (const o of objects) {
      if (o.kind !== "Node") continue;
      const ip = internalIp(o as Node);
      if (ip) wantedNodes.set(o.metadata.name, ip);
    }
    for (const [name, running] of this.nodes) {
      if (wantedNodes.get(name) === running.ip) continue;
      await running.ztunnel.stop();
      this.nodes.delete(name);
      this.logger.info({ node: name }, "ztunnel stopped");
    }
    for (const [name, ip] of wantedNodes) {
      if (this.nodes.has(name)) continue;
      const args = [
        "--admin-on-node-ip",
        "--log-level",
        this.opts.logLevel,
        ...(this.opts.ztunnelArgs?.(name, ip) ?? []),
      ];
      const config = parseZtunnelConfig(args, {
        NODE_NAME: name,
        NODE_IP: ip,
        XDS_ADDRESS: this.cp.address,
        AMBIENT_NODE_TOKEN_FILE: LocalTokenAuthenticator.tokenPath(
          join(this.opts.stateDir, "controlplane"),
          name,
        ),
      });
      const ztunnel = await Ztunnel.start(config, {
        logger: this.logger.child({ process: "ztunnel" }),
        ...this.opts.ztunnelDeps?.(name, ip),
      });
      this.nodes.set(name, { ip, ztunnel });
      this.logger.info({ node: name, ip }, "ztunnel started");
    }

    // Pods: an echo server on every container port of every running pod that has an address.
    const wantedPods = new Map<string, { pod: Pod; ip: string; ports: number[] }>();
    for (const o of objects) {
      if (!isPod(o) || o.spec?.hostNetwork) continue;
      const ip = o.status?.podIP;
      const phase = o.status?.phase ?? "Running";
      if (!ip || phase !== "Running") continue;
      wantedPods.set(`${o.metadata.namespace ?? "default"}/${o.metadata.name}`, {
        pod: o,
        ip,
        ports: containerPorts(o),
      });
    }
    for (const [key, running] of this.pods) {
      const want = wantedPods.get(key);
      if (want && want.ip === running.ip && same(want.ports, running.ports)) continue;
      await running.server.close();
      this.pods.delete(key);
    }
    // Pods an Istio Gateway's selector picks are its ingress gateway (as `istio: ingressgateway`).
    const selectors = objects
      .filter((o) => isIstioGateway(o))
      .map((g) =>
        Object.entries((g.spec as { selector?: Record<string, string> } | undefined)?.selector ?? {}),
      )
      .filter((entries) => entries.length > 0);
    const selected = (pod: Pod) =>
      selectors.some((entries) => entries.every(([k, v]) => pod.metadata.labels?.[k] === v));
    for (const [key, { pod, ip, ports }] of wantedPods) {
      if (this.pods.has(key)) continue;
      const gateway = pod.metadata.labels?.[GATEWAY_NAME_LABEL];
      if (gateway) {
        const ingress = pod.metadata.labels?.[GATEWAY_CLASS_LABEL] === INGRESS_CLASS;
        await this.startWaypoint(key, pod, gateway, ip, ingress);
        continue;
      }
      if (selected(pod)) {
        await this.startWaypoint(key, pod, pod.metadata.name, ip, true);
        continue;
      }
      const server = new EchoServer({
        pod: pod.metadata.name,
        namespace: pod.metadata.namespace ?? "default",
        serviceAccount: pod.spec?.serviceAccountName ?? "default",
        node: pod.spec?.nodeName ?? "",
      });
      try {
        for (const port of ports) await server.listen(ip, port);
      } catch (err) {
        this.logger.error(
          { pod: key, ip, ports, err: (err as Error).message },
          "cannot start the pod's echo server",
        );
      }
      this.pods.set(key, { key, ip, ports, node: pod.spec?.nodeName ?? "", server, echo: server });
    }
  }

  /**
   * A waypoint's pod runs the waypoint proxy on its address (HBONE on 15008); an ingress gateway's
   * pod runs the same proxy with --ingress (listeners on its Gateways' ports).
   */
  private async startWaypoint(
    key: string,
    pod: Pod,
    gateway: string,
    ip: string,
    ingress = false,
  ): Promise<void> {
    const node = pod.spec?.nodeName ?? "";
    // Admin on the pod's own 127.x address: every local pod shares the host's loopback, where
    // 127.0.0.1:15000 would fit one waypoint (ztunnel's --admin-on-node-ip, for the same reason).
    const args = ["--admin-on-pod-ip", "--log-level", this.opts.logLevel];
    if (ingress) args.push("--ingress", "--ingress-pod", pod.metadata.name);
    const config = parseWaypointConfig(args, {
      GATEWAY_NAME: gateway,
      POD_NAMESPACE: pod.metadata.namespace ?? "default",
      INSTANCE_IP: ip,
      SERVICE_ACCOUNT: pod.spec?.serviceAccountName ?? gateway,
      NODE_NAME: node,
      XDS_ADDRESS: this.cp.address,
      AMBIENT_NODE_TOKEN_FILE: LocalTokenAuthenticator.tokenPath(
        join(this.opts.stateDir, "controlplane"),
        node,
      ),
    });
    try {
      const waypoint = await Waypoint.start(config, {
        logger: this.logger.child({ process: ingress ? "ingress-gateway" : "waypoint" }),
      });
      this.pods.set(key, {
        key,
        ip,
        ports: containerPorts(pod),
        node,
        server: { close: () => waypoint.stop() },
        waypoint,
        ...(ingress ? { ingress } : {}),
      });
    } catch (err) {
      this.logger.error({ pod: key, err: (err as Error).message }, "cannot start the waypoint");
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.reconciling;
    await Promise.all([...this.pods.values()].map((p) => p.server.close()));
    await Promise.all([...this.nodes.values()].map((n) => n.ztunnel.stop()));
    this.pods.clear();
    this.nodes.clear();
    await this.cp.stop();
  }
}

function isPod(o: KubeObject): o is Pod {
  return o.kind === "Pod" && o.apiVersion === "v1";
}

function containerPorts(p: Pod): number[] {
  const ports = new Set<number>();
  for (const c of p.spec?.containers ?? []) for (const port of c.ports ?? []) ports.add(port.containerPort);
  return [...ports].sort((a, b) => a - b);
}

function same(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
