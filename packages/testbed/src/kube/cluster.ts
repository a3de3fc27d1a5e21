// A Kubernetes cluster on one machine (`ambientctl up --kube [--netns]`, test/kube, test/netns):
// the test API server with Istio's CRDs and `<state-dir>/kubeconfig`; a folder's objects applied
// as `kubectl apply --server-side` would; the mesh's own pods (mesh-objects.ts; none with `mesh:
// false`, for a mesh installed with Helm); and per node a kubelet stand-in that runs the pods bound
// to it. Loopback runs pods in this process on 127.x
// addresses; --netns runs them as real processes in network namespaces wired by the CNI chain.
// Phases: plan nodes → network (netns: topology, API endpoint) → API server → objects → kubelets
// → controllers.

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger, LogLevel } from "@ambient/core";
import type { KubeObject, Pod } from "@ambient/kube";
import { loadKubeConfig } from "@ambient/kube/api";
import { istioCrds } from "../apiserver/istio-crds.js";
import type { LogOptions } from "../apiserver/pod-backends.js";
import { startTestApiServer, type TestApiServer } from "../apiserver/server.js";
import { writeNodeConflist } from "../netns/node-conflist.js";
import { createTopology, type Topology } from "../netns/topology.js";
import { API_ENDPOINT_IP, API_ENDPOINT_PORT, ApiEndpoint } from "./api-endpoint.js";
import { applyObjects, readFolder } from "./apply-manifests.js";
import { KubeClient } from "./client.js";
import { type Controllers, startControllers } from "./controllers/index.js";
import { KubeProxy } from "./kube-proxy.js";
import { Kubelet } from "./kubelet.js";
import { LoopbackRuntime } from "./loopback-runtime.js";
import { LoopbackServices } from "./loopback-services.js";
import { isCniAgentPod, meshObjects } from "./mesh-objects.js";
import { NetnsRuntime } from "./netns-runtime.js";
import { nodePathMapper } from "./node-paths.js";
import { proxyToPod } from "./pod-proxy.js";
import type { ContainerRuntime } from "./runtime.js";

export interface KubeClusterOptions {
  /** The kubeconfig, pods' volumes and logs go here. */
  stateDir: string;
  /** A manifests folder to apply once the API server is up. */
  dir?: string;
  /**
   * The mesh's own pods (mesh-objects.ts). False (`--no-mesh`): the API server, the nodes and the
   * folder's apps only, for `helm install` of deploy/charts/ambient to bring the mesh up.
   */
  mesh?: boolean;
  /** The nodes (default: those the folder names, else one `node-1`). */
  nodes?: readonly string[];
  /** Network namespaces with this prefix instead of loopback (root). */
  netns?: { prefix: string };
  /** Loopback mode: node i (1-based) is `<net>.<i>.1`, its pods `<net>.<i>.10` and up. Default 127.30. */
  loopbackNet?: string;
  logLevel: LogLevel;
  logger: Logger;
  /** Tests: a quicker watchdog and backoff for every reflector the harness runs. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

const DEFAULT_LOOPBACK_NET = "127.30";

export class KubeCluster {
  readonly kubelets = new Map<string, Kubelet>();
  private proxy: KubeProxy | undefined;
  private services: LoopbackServices | undefined;
  private endpoint: ApiEndpoint | undefined;
  private stopped = false;

  private constructor(
    readonly api: TestApiServer,
    readonly client: KubeClient,
    readonly nodes: readonly { name: string; ip: string }[],
    readonly topology: Topology | undefined,
    private readonly o: KubeClusterOptions,
  ) {}

  get kubeconfigPath(): string {
    return this.api.kubeconfigPath;
  }

  get stateDir(): string {
    return this.o.stateDir;
  }

  static async start(o: KubeClusterOptions): Promise<KubeCluster> {
    await mkdir(o.stateDir, { recursive: true });
    const folder = o.dir ? await readFolder(o.dir, o.logger.child({ component: "manifests" })) : undefined;
    const names = o.nodes?.length ? [...o.nodes] : folder?.nodes.length ? folder.nodes : ["node-1"];
    let topology: Topology | undefined;
    if (o.netns) {
      topology = await createTopology({
        nodes: names.map((name) => ({ name })),
        prefix: o.netns.prefix,
        stateDir: join(o.stateDir, "netns"),
      });
    }
    const net = o.loopbackNet ?? DEFAULT_LOOPBACK_NET;
    const nodes = topology
      ? topology.nodes.map((n) => ({ name: n.name, ip: n.ip }))
      : names.map((name, i) => ({ name, ip: `${net}.${i + 1}.1` }));
    let api: TestApiServer | undefined;
    let cluster: KubeCluster | undefined;
    try {
      api = await startTestApiServer({
        // Without the mesh the cluster is as a new one: the chart's base part installs the CRDs.
        objects: o.mesh === false ? [] : istioCrds(),
        dir: o.stateDir,
        ...(topology ? { serverIps: [API_ENDPOINT_IP] } : {}),
      });
      const client = new KubeClient(loadKubeConfig(api.kubeconfigPath));
      cluster = new KubeCluster(api, client, nodes, topology, o);
      await cluster.startNetwork();
      await applyObjects(client, [
        ...(o.mesh === false
          ? []
          : meshObjects({ nodes, netns: !!topology, logLevel: componentLevel(o.logLevel) })),
        ...(folder?.objects ?? []),
      ]);
      await Promise.all(nodes.map((n) => cluster!.startKubelet(n)));
      // After the kubelets registered their Nodes, so the first syncs see every node.
      await cluster.startControllers();
      api.backends.log = (pod, options, clientGone) => cluster!.podLog(pod as Pod, options, clientGone);
      api.backends.proxy = proxyToPod;
      return cluster;
    } catch (err) {
      if (cluster) await cluster.stop();
      else {
        await api?.stop();
        await topology?.destroy();
      }
      throw err;
    }
  }

  /** The API server's `pods/log`: the kubelet of the pod's node answers, as the real API server asks it. */
  private podLog(
    pod: Pod,
    options: LogOptions,
    clientGone: AbortSignal,
  ): Promise<string | AsyncIterable<Buffer>> {
    const node = pod.spec?.nodeName ?? "";
    const kubelet = this.kubelets.get(node);
    if (!kubelet) return Promise.reject(new Error(`no kubelet runs on node "${node}"`));
    return kubelet.log(pod, options, clientGone);
  }

  /** Applies objects as `kubectl apply --server-side` would. */
  apply(objects: readonly KubeObject[]): Promise<void> {
    return applyObjects(this.client, objects);
  }

  /** Resolves once every pod in the API is Ready (or rejects after `timeoutMs`, naming those that are not). */
  async podsReady(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = await this.client.request<{ items: KubeObject[] }>("GET", "/api/v1/pods");
      const notReady = list.items
        .filter(
          (p) =>
            !(p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.some(
              (c) => c.type === "Ready" && c.status === "True",
            ),
        )
        .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
      if (notReady.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`pods not Ready after ${timeoutMs} ms: ${notReady.join(", ")}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Controllers first: a controller outliving the kubelets would replace the pods they stop.
    await this.controllers?.stop();
    await Promise.allSettled([...this.kubelets.values()].map((k) => k.stop()));
    this.kubelets.clear();
    await this.proxy?.stop().catch(() => {});
    await this.services?.stop().catch(() => {});
    await this.endpoint?.stop().catch(() => {});
    await this.api.stop();
    await this.topology?.destroy();
  }

  /** Where node `node`'s paths (hostPath volumes) are on this disk (node-paths.ts). */
  nodePath(node: string, path: string): string {
    const t = this.topology?.node(node);
    return nodePathMapper({
      root: join(this.o.stateDir, "nodes", node, "root"),
      ...(t
        ? {
            shared: {
              "/opt/cni/bin": t.cniBinDir,
              "/etc/cni/net.d": t.confDir,
              "/var/run/netns": "/var/run/netns",
            },
          }
        : {}),
    })(path);
  }

  private async startNetwork(): Promise<void> {
    if (!this.topology) return;
    for (const node of this.topology.nodes) {
      await writeNodeConflist(node.confDir, {
        podCidr: node.podCidr,
        gateway: node.gateway,
        ipamDir: node.ipamDir,
      });
    }
    const target = new URL(this.api.url);
    this.endpoint = await ApiEndpoint.start(this.topology, {
      host: target.hostname,
      port: Number(target.port),
    });
    this.proxy = new KubeProxy(this.client.kc, this.topology, this.o.logger, this.o.reflector);
    await this.proxy.start();
  }

  private runtime(): ContainerRuntime {
    if (this.topology) {
      const proxy = this.proxy!;
      return new NetnsRuntime(
        this.topology,
        (netns, namespace) => proxy.addSandbox(netns, namespace),
        (netns) => proxy.removeSandbox(netns),
      );
    }
    // The service network is <net>.0.x: node i is <net>.<i>.1 (i from 1), so .0 is free.
    const net = this.o.loopbackNet ?? DEFAULT_LOOPBACK_NET;
    this.services = new LoopbackServices(this.client, `${net}.0`, this.o.logger);
    return new LoopbackRuntime({
      nodes: new Map(this.nodes.map((n) => [n.name, n.ip])),
      services: this.services,
      logLevel: componentLevel(this.o.logLevel),
      logger: this.o.logger,
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    });
  }

  private shared: ContainerRuntime | undefined;
  private controllers: Controllers | undefined;

  /** kube-scheduler and the workload controllers (controllers/), on the harness's own credentials. */
  private async startControllers(): Promise<void> {
    this.controllers = await startControllers({
      kc: this.client.kc,
      client: this.client,
      logger: this.o.logger,
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    });
  }

  private async startKubelet(node: { name: string; ip: string }): Promise<void> {
    this.shared ??= this.runtime();
    const api = new URL(this.api.url);
    const kubelet = await Kubelet.start({
      node: node.name,
      nodeIp: node.ip,
      kc: this.client.kc,
      client: this.client,
      runtime: this.shared,
      dir: join(this.o.stateDir, "nodes", node.name, "kubelet"),
      apiServer: this.topology
        ? { host: API_ENDPOINT_IP, port: API_ENDPOINT_PORT }
        : { host: api.hostname, port: Number(api.port) },
      nodePath: (path) => this.nodePath(node.name, path),
      logger: this.o.logger.child({ node: node.name }),
      ...(this.topology ? { gate: isCniAgentPod } : {}),
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    });
    this.kubelets.set(node.name, kubelet);
  }
}

/**
 * Components log at info at least: the netns runtime reads readiness from their "ready" lines and
 * their logs go to files; a quieter terminal is the caller's logger's business.
 */
function componentLevel(level: LogLevel): LogLevel {
  return level === "trace" || level === "debug" ? level : "info";
}
