// The mesh on network namespaces (`ambientctl up --netns`, test/netns): real nodes and pods as
// netns, pods wired by the reference bridge + host-local CNI plugins with ambient-cni chained
// after them, and the real binaries inside: the control plane in the first node's netns, a node
// agent and a ztunnel in every node's netns, an echo app (or, for a waypoint's pod, the waypoint
// proxy) in every pod's netns. Phases:
// plan (nodes from the manifests) → topology → control plane → agents and ztunnels → pods, then
// follow edits of the folder (pods come and go; label changes reach the control plane and the
// agents through the generated folder).

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@ambient/core";
import { isNode, isPod } from "@ambient/kube";
import { ManifestStore } from "@ambient/kube/manifests";
import { READY_MESSAGE } from "@ambient/ztunnel";
import { binaryPath, nodeArgv } from "../binaries.js";
import { ECHO_READY_MESSAGE, echoCommand } from "./echo-app.js";
import { NetnsManifests } from "./manifests.js";
import type { PlannedPod } from "./manifests-rewrite.js";
import { podNetnsName } from "./names.js";
import { writeNodeConflist } from "./node-conflist.js";
import {
  createPodNetns,
  deletePod,
  type PodNetns,
  removeHostsFile,
  writeHostsFile,
  writeResolvConf,
} from "./pods.js";
import { applyServiceRules, serviceRules } from "./service-proxy.js";
import { type NetnsProcess, spawnInNetns } from "./spawn.js";
import { createTopology, defaultStateDir, type Topology, type TopologyNode } from "./topology.js";

export const BINARIES = {
  controlplane: binaryPath("@ambient/controlplane", "ambient-controlplane"),
  agent: binaryPath("@ambient/cni", "ambient-cni-agent"),
  ztunnel: binaryPath("@ambient/ztunnel", "ztunnel"),
  waypoint: binaryPath("@ambient/waypoint", "waypoint"),
};
export const XDS_PORT = 15010;
/** Pods to give up on, with the reason, rather than fail the whole mesh. */
const POD_START_TIMEOUT_MS = 20_000;

export interface NetnsMeshOptions {
  /** The user's manifests folder (read, never written). */
  dir: string;
  /** Netns name prefix; test files use their own so they never collide. Default "ambient-". */
  prefix?: string;
  stateDir?: string;
  logLevel?: string;
  logger: Logger;
  /**
   * ztunnel's DNS proxy with the agents' DNS capture, and a Kubernetes-style resolv.conf in every
   * pod. `upstream`: ztunnel's --dns-upstream (default: the host's resolv.conf).
   */
  dnsProxy?: { upstream?: string };
}

export interface NetnsNode {
  topology: TopologyNode;
  agent: NetnsProcess;
  ztunnel: NetnsProcess;
  cniSocket: string;
  ztunnelSocket: string;
  agentStateDir: string;
}

export interface NetnsPod {
  plan: PlannedPod;
  sandbox: PodNetns;
  app: NetnsProcess | undefined;
}

/** What `ambientctl up --netns` prints: where everything runs and how to reach it. */
export interface NetnsMeshSummary {
  nodes: { name: string; netns: string; ip: string; podCidr: string }[];
  pods: {
    namespace: string;
    name: string;
    node: string;
    netns: string;
    ip: string;
    ports: number[];
    /** The agent's `ambient.istio.io/redirection` annotation: "enabled" when captured. */
    redirection: string | undefined;
    waypoint: string | undefined;
  }[];
  /** Service names as the pods' hosts files resolve them (FQDN first), with their VIP. */
  services: { ip: string; names: readonly string[] }[];
}

export class NetnsMesh {
  readonly nodes = new Map<string, NetnsNode>();
  readonly pods = new Map<string, NetnsPod>();
  private controlplane: NetnsProcess | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private serviceRulesApplied: string | undefined;

  private constructor(
    readonly topology: Topology,
    readonly manifests: NetnsManifests,
    readonly stateDir: string,
    private readonly opts: NetnsMeshOptions,
  ) {}

  static async start(opts: NetnsMeshOptions): Promise<NetnsMesh> {
    const prefix = opts.prefix ?? "ambient-";
    const stateDir = opts.stateDir ?? defaultStateDir(prefix);
    const log = opts.logger;
    // Plan: the nodes are the Node objects plus any node a pod is scheduled on.
    const names = await nodeNames(opts.dir, log);
    if (names.length === 0) throw new Error(`${opts.dir}: no Node objects and no pod with spec.nodeName`);
    const topology = await createTopology({ nodes: names.map((name) => ({ name })), prefix, stateDir });
    let mesh: NetnsMesh | undefined;
    try {
      const manifests = await NetnsManifests.start({
        sourceDir: opts.dir,
        outDir: join(stateDir, "manifests"),
        nodes: topology.nodes.map((n) => ({ name: n.name, ip: n.ip })),
        logger: log.child({ component: "manifests" }),
      });
      mesh = new NetnsMesh(topology, manifests, stateDir, opts);
      await mesh.startControlPlane();
      for (const node of topology.nodes) await mesh.startNode(node);
      await mesh.reconcilePods();
      mesh.unsubscribe = manifests.onChange(() => {
        mesh!.reconciling = mesh!.reconciling
          .then(() => mesh!.reconcilePods())
          .catch((err) => log.error({ err }, "netns mesh reconcile failed"));
      });
      return mesh;
    } catch (err) {
      if (mesh) await mesh.stop();
      else await topology.destroy();
      throw err;
    }
  }

  /**
   * Components log to files under the state dir, and readiness is read from their "ready" lines
   * (info): they log at info at least, whatever the terminal shows.
   */
  private get componentLogLevel(): string {
    const level = this.opts.logLevel ?? "info";
    return ["trace", "debug"].includes(level) ? level : "info";
  }

  get controlPlaneAddress(): string {
    return `${this.topology.nodes[0]!.ip}:${XDS_PORT}`;
  }

  /** The netns name of a pod (for `ip netns exec`). */
  podNetns(namespace: string, name: string): string {
    return podNetnsName(this.topology.prefix, namespace, name);
  }

  private logFile(name: string): string {
    const dir = join(this.stateDir, "logs");
    mkdirSync(dir, { recursive: true });
    return join(dir, `${name}.log`);
  }

  private async startControlPlane(): Promise<void> {
    const first = this.topology.nodes[0]!;
    this.controlplane = await spawnInNetns(
      first.netnsPath,
      process.execPath,
      [
        ...nodeArgv(BINARIES.controlplane),
        "--config-dir",
        this.manifests.outDir,
        "--listen",
        this.controlPlaneAddress,
        "--state-dir",
        join(this.stateDir, "controlplane"),
        "--log-level",
        this.componentLogLevel,
      ],
      { logFile: this.logFile("controlplane") },
    );
    await this.controlplane.waitForLog(/control plane serving/, 20_000);
  }

  /** The control plane's token for a node (written when the control plane first sees the Node). */
  tokenFile(node: string): string {
    return join(this.stateDir, "controlplane", "node-tokens", `${node}.token`);
  }

  private async startNode(node: TopologyNode): Promise<void> {
    await writeNodeConflist(node.confDir, {
      podCidr: node.podCidr,
      gateway: node.gateway,
      ipamDir: node.ipamDir,
    });
    const dir = join(this.stateDir, "nodes", node.name);
    const cniSocket = join(dir, "cni.sock");
    const ztunnelSocket = join(dir, "ztunnel.sock");
    const agentStateDir = join(dir, "agent");
    const agent = await this.spawnAgent(node, { cniSocket, ztunnelSocket, agentStateDir });
    const ztunnel = await this.spawnZtunnel(node, ztunnelSocket);
    this.nodes.set(node.name, { topology: node, agent, ztunnel, cniSocket, ztunnelSocket, agentStateDir });
  }

  private async spawnAgent(
    node: TopologyNode,
    paths: { cniSocket: string; ztunnelSocket: string; agentStateDir: string },
  ): Promise<NetnsProcess> {
    const agent = await spawnInNetns(
      node.netnsPath,
      process.execPath,
      [
        ...nodeArgv(BINARIES.agent),
        "--node-name",
        node.name,
        "--manifests",
        this.manifests.outDir,
        "--cni-bin-dir",
        node.cniBinDir,
        "--cni-conf-dir",
        node.confDir,
        "--cni-socket",
        paths.cniSocket,
        "--ztunnel-socket",
        paths.ztunnelSocket,
        "--state-dir",
        paths.agentStateDir,
        // Every node netns shares this host's filesystem and its Node.js.
        "--copy-node=false",
        ...(this.opts.dnsProxy ? ["--dns-capture"] : []),
        "--log-level",
        this.componentLogLevel,
      ],
      { logFile: this.logFile(`agent-${node.name}`) },
    );
    await agent.waitForLog(/node agent ready/, 20_000);
    return agent;
  }

  private async spawnZtunnel(node: TopologyNode, ztunnelSocket: string): Promise<NetnsProcess> {
    const z = await spawnInNetns(
      node.netnsPath,
      process.execPath,
      [
        ...nodeArgv(BINARIES.ztunnel),
        "--node-name",
        node.name,
        "--node-ip",
        node.ip,
        "--admin-on-node-ip",
        "--xds-address",
        this.controlPlaneAddress,
        "--token-file",
        this.tokenFile(node.name),
        "--inpod-uds",
        ztunnelSocket,
        ...(this.opts.dnsProxy ? ["--dns-proxy"] : []),
        ...(this.opts.dnsProxy?.upstream ? ["--dns-upstream", this.opts.dnsProxy.upstream] : []),
        "--log-level",
        this.componentLogLevel,
      ],
      { logFile: this.logFile(`ztunnel-${node.name}`) },
    );
    await z.waitForLog(/connected to the node agent/, 20_000);
    return z;
  }

  /**
   * A DaemonSet rollout of a node's ztunnel (maxSurge 1, maxUnavailable 0, as Istio's chart): the
   * new ztunnel starts, gets every pod from the agent and binds their listeners next to the old
   * one's (SO_REUSEPORT); once it is ready the old one drains and exits. No connection is refused.
   */
  async rolloutZtunnel(nodeName: string): Promise<void> {
    const n = this.requireNode(nodeName);
    const old = n.ztunnel;
    const next = await this.spawnZtunnel(n.topology, n.ztunnelSocket);
    try {
      await next.waitForLog(READY_MESSAGE, 30_000);
    } catch (err) {
      await next.stop();
      throw err;
    }
    n.ztunnel = next;
    await old.stop(30_000);
  }

  /**
   * A ztunnel crash (SIGKILL) and its replacement. Resolves once the new one is connected, with
   * when the old one was gone (`stoppedAt`, epoch ms).
   */
  async crashZtunnel(nodeName: string): Promise<{ stoppedAt: number }> {
    const n = this.requireNode(nodeName);
    n.ztunnel.child.kill("SIGKILL");
    await n.ztunnel.stop();
    const stoppedAt = Date.now();
    n.ztunnel = await this.spawnZtunnel(n.topology, n.ztunnelSocket);
    return { stoppedAt };
  }

  /** Restarts a node's agent: it must reconcile from its state, not duplicate rules. */
  async restartAgent(nodeName: string): Promise<void> {
    const n = this.requireNode(nodeName);
    await n.agent.stop();
    n.agent = await this.spawnAgent(n.topology, n);
  }

  private requireNode(name: string): NetnsNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name} (nodes: ${[...this.nodes.keys()].join(", ")})`);
    return n;
  }

  summary(): NetnsMeshSummary {
    const annotations = new Map<string, Record<string, Record<string, string>>>();
    for (const [name, n] of this.nodes) {
      const file = join(n.agentStateDir, "annotations.json");
      annotations.set(name, existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {});
    }
    return {
      nodes: this.topology.nodes.map((n) => ({ name: n.name, netns: n.netns, ip: n.ip, podCidr: n.podCidr })),
      pods: [...this.pods.values()]
        .map(({ plan: p, sandbox }) => ({
          namespace: p.namespace,
          name: p.name,
          node: p.node,
          netns: sandbox.netns,
          ip: sandbox.ip,
          ports: p.ports,
          redirection: annotations.get(p.node)?.[`${p.namespace}/${p.name}`]?.[
            "ambient.istio.io/redirection"
          ],
          waypoint: p.waypoint,
        }))
        .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
      services: this.manifests.hostsEntries(),
    };
  }

  /** Creates sandboxes and apps for planned pods that have none; removes those no longer planned. */
  private async reconcilePods(): Promise<void> {
    if (this.stopped) return;
    const plan = this.manifests.plan();
    for (const s of plan.skipped) this.opts.logger.info(s, "pod not run in netns mode");
    const wanted = new Map(plan.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
    for (const [key, pod] of this.pods) {
      if (wanted.get(key)?.node === pod.plan.node) continue;
      await this.removePod(key, pod);
    }
    // Pods start concurrently: each one is a CNI ADD (which waits for the agent and ztunnel).
    const starting = [...wanted]
      .filter(([key]) => !this.pods.has(key))
      .map(([key, p]) =>
        this.startPod(key, p).catch((err) =>
          this.opts.logger.error({ pod: key, err: (err as Error).message }, "pod did not start"),
        ),
      );
    await Promise.all(starting);
    // Services may have changed: every pod's hosts file follows, and so do the nodes' VIP rules
    // (kube-proxy's part, for pods outside the mesh).
    for (const pod of this.pods.values()) {
      await writeHostsFile(pod.sandbox.netns, this.manifests.hostsEntries(pod.plan.namespace));
    }
    const rules = serviceRules(this.manifests.objects());
    if (rules.join("\n") !== this.serviceRulesApplied) {
      for (const node of this.topology.nodes) await applyServiceRules(node.netns, rules);
      this.serviceRulesApplied = rules.join("\n");
    }
  }

  private async startPod(key: string, p: PlannedPod): Promise<void> {
    const sandbox = await createPodNetns(this.topology, p.node, { namespace: p.namespace, name: p.name });
    const entry: NetnsPod = { plan: p, sandbox, app: undefined };
    this.pods.set(key, entry);
    await writeHostsFile(sandbox.netns, this.manifests.hostsEntries(p.namespace));
    if (this.opts.dnsProxy) await writeResolvConf(sandbox.netns, p.namespace);
    const runsSomething = p.waypoint !== undefined || p.ports.length > 0;
    await this.manifests.setPodState(p.namespace, p.name, { ip: sandbox.ip, ready: !runsSomething });
    if (p.waypoint !== undefined) {
      // A waypoint's pod runs the waypoint proxy on its own address (HBONE on 15008). Its pods are
      // labelled istio.io/dataplane-mode=none, so the agent leaves them uncaptured, as Istio does.
      entry.app = await spawnInNetns(sandbox.netnsPath, process.execPath, this.waypointArgs(p, sandbox.ip), {
        logFile: this.logFile(`pod-${p.namespace}-${p.name}`),
      });
      await entry.app.waitForLog(/waypoint started|ingress gateway started/, POD_START_TIMEOUT_MS);
    } else if (p.ports.length > 0) {
      const { cmd, args } = echoCommand({
        pod: p.name,
        namespace: p.namespace,
        serviceAccount: p.serviceAccount,
        node: p.node,
        ports: p.ports,
      });
      entry.app = await spawnInNetns(sandbox.netnsPath, cmd, args, {
        logFile: this.logFile(`pod-${p.namespace}-${p.name}`),
      });
      await entry.app.waitForLog(ECHO_READY_MESSAGE, POD_START_TIMEOUT_MS);
    }
    if (runsSomething) await this.manifests.setPodState(p.namespace, p.name, { ip: sandbox.ip, ready: true });
    this.opts.logger.info({ pod: key, node: p.node, ip: sandbox.ip, netns: sandbox.netns }, "pod running");
  }

  private waypointArgs(p: PlannedPod, ip: string): string[] {
    return [
      ...nodeArgv(BINARIES.waypoint),
      "--name",
      p.waypoint!,
      "--namespace",
      p.namespace,
      "--ip",
      ip,
      "--service-account",
      p.serviceAccount,
      "--node-name",
      p.node,
      "--xds-address",
      this.controlPlaneAddress,
      "--token-file",
      this.tokenFile(p.node),
      "--log-level",
      this.componentLogLevel,
      ...(p.ingress ? ["--ingress", "--ingress-pod", p.name] : []),
    ];
  }

  private async removePod(key: string, pod: NetnsPod): Promise<void> {
    await pod.app?.stop();
    await deletePod(this.topology, pod.sandbox).catch((err) =>
      this.opts.logger.warn({ pod: key, err: (err as Error).message }, "CNI DEL failed"),
    );
    await removeHostsFile(pod.sandbox.netns).catch(() => {});
    await this.manifests.setPodState(pod.plan.namespace, pod.plan.name, undefined);
    this.pods.delete(key);
    this.opts.logger.info({ pod: key }, "pod removed");
  }

  /** Resolves when the last change to the folder has been applied. */
  async settled(): Promise<void> {
    await this.reconciling;
    await this.manifests.flush();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    await this.reconciling.catch(() => {});
    await this.manifests.stop().catch(() => {});
    await Promise.allSettled([...this.pods.values()].map((p) => p.app?.stop()));
    // Sandboxes go through CNI DEL, as a runtime would, before the agents stop.
    for (const [key, pod] of this.pods) {
      await deletePod(this.topology, pod.sandbox).catch((err) =>
        this.opts.logger.warn({ pod: key, err: (err as Error).message }, "CNI DEL failed"),
      );
    }
    this.pods.clear();
    await Promise.allSettled([...this.nodes.values()].flatMap((n) => [n.ztunnel.stop(), n.agent.stop()]));
    await this.controlplane?.stop();
    await this.topology.destroy();
  }
}

async function nodeNames(dir: string, logger: Logger): Promise<string[]> {
  const store = new ManifestStore(dir, logger);
  await store.reload();
  const names = new Set<string>();
  for (const o of store.objects()) {
    if (isNode(o)) names.add(o.metadata.name);
    else if (isPod(o) && o.spec?.nodeName && !o.spec.hostNetwork) names.add(o.spec.nodeName);
  }
  return [...names].sort();
}
