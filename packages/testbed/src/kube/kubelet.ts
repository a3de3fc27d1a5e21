// The kubelet stand-in of one node: registers its Node (InternalIP, Ready), follows the pods bound
// to it (a reflector with field selector spec.nodeName, so a watch stall, a 410 or an API server
// restart is recovered from like any component's), runs each through a PodWorker and reports their
// status with a status manager that retries until the API server takes it.

import { Backoff, type Logger } from "@ambient/core";
import { kindInfo, type Pod } from "@ambient/kube";
import { apiStatusOf, KubeApiSource, type KubeConfig } from "@ambient/kube/api";
import type { LogOptions } from "../apiserver/pod-backends.js";
import { type KubeClient, podPath } from "./client.js";
import { readContainerLog } from "./container-logs.js";
import { podKey } from "./pod-volumes.js";
import { PodWorker } from "./pod-worker.js";
import type { ContainerRuntime } from "./runtime.js";

export interface KubeletOptions {
  node: string;
  nodeIp: string;
  kc: KubeConfig;
  client: KubeClient;
  runtime: ContainerRuntime;
  /** The kubelet's folder (pods' volumes and container logs). */
  dir: string;
  apiServer: { host: string; port: number };
  /** Where a node path (a hostPath volume's) is on this disk; see cluster.ts `nodePath`. */
  nodePath: (path: string) => string;
  logger: Logger;
  /**
   * Pods that must be Ready before the node takes other pod-network pods: Istio taints a node
   * `cni.istio.io/not-ready` until its CNI agent runs, so no pod starts outside the mesh.
   */
  gate?: (pod: Pod) => boolean;
  /** Tests: a quicker watchdog and backoff for the pod reflector. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

// The kubelet's readiness probes default to every 10 s; 500 ms keeps a test from waiting.
const PROBE_MS = 500;
const FIELD_MANAGER = "kubelet";

export class Kubelet {
  private readonly workers = new Map<string, PodWorker>();
  /** Pods being stopped for a graceful deletion, by `namespace/name`: what stop() waits for. */
  private readonly terminating = new Map<string, Promise<void>>();
  private readonly source: KubeApiSource;
  private readonly status: StatusManager;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(private readonly o: KubeletOptions) {
    this.status = new StatusManager(o.client, o.logger);
    this.source = new KubeApiSource(o.kc, {
      logger: o.logger.child({ component: "kubelet-pods" }),
      kinds: [kindInfo("v1", "Pod")!],
      fieldSelectors: { Pod: `spec.nodeName=${o.node}` },
      ...(o.reflector ? { reflector: o.reflector } : {}),
    });
  }

  static async start(o: KubeletOptions): Promise<Kubelet> {
    const k = new Kubelet(o);
    await k.registerNode();
    k.source.onChange(() => k.schedule());
    await k.source.start();
    k.schedule();
    k.probeTimer = setInterval(() => k.probe(), PROBE_MS);
    k.probeTimer.unref();
    return k;
  }

  get node(): string {
    return this.o.node;
  }

  /** The pods this kubelet runs, by `namespace/name`. */
  pods(): ReadonlyMap<string, PodWorker> {
    return this.workers;
  }

  /**
   * `pods/<name>/log` for a pod on this node (the kubelet's /containerLogs); following ends when
   * `clientGone` aborts or the pod's containers stop.
   */
  log(pod: Pod, options: LogOptions, clientGone: AbortSignal): Promise<string | AsyncIterable<Buffer>> {
    const worker = this.workers.get(podKey(pod));
    let end: AbortSignal | undefined;
    if (worker?.running) {
      const stopped = new AbortController();
      void worker.done.then(() => stopped.abort());
      end = AbortSignal.any([clientGone, stopped.signal]);
    }
    return readContainerLog(`${this.o.dir}/logs`, pod, options, end);
  }

  /** Resolves once the pods in the source have been acted on and their status sent. */
  async settled(): Promise<void> {
    await this.reconciling;
    await this.status.flushed();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.probeTimer);
    await this.source.stop();
    await this.reconciling;
    // A pod in its grace period still has processes (netns: in their own namespaces) to end.
    await Promise.allSettled(
      [...this.workers.values()].map((w) => w.stop()).concat([...this.terminating.values()]),
    );
    this.workers.clear();
    this.status.stop();
  }

  private async registerNode(): Promise<void> {
    const { client, node, nodeIp } = this.o;
    await client.apply(
      {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: node, labels: { "kubernetes.io/hostname": node, "kubernetes.io/os": "linux" } },
      },
      FIELD_MANAGER,
    );
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    await client.mergePatch(`/api/v1/nodes/${node}/status`, {
      status: {
        addresses: [
          { type: "InternalIP", address: nodeIp },
          { type: "Hostname", address: node },
        ],
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "kubelet is posting ready status",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
        nodeInfo: {
          kubeletVersion: "v1.35.0-ambient-testbed",
          operatingSystem: "linux",
          architecture: "amd64",
        },
      },
    });
  }

  private schedule(): void {
    this.reconciling = this.reconciling
      .then(() => this.reconcile())
      .catch((err: Error) =>
        this.o.logger.error({ node: this.o.node, err: err.message }, "kubelet sync failed"),
      );
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map<string, Pod>();
    for (const o of this.source.objects()) {
      const pod = o as Pod;
      if (pod.metadata.deletionTimestamp) {
        this.terminate(pod);
        continue;
      }
      const phase = pod.status?.phase;
      if (phase === "Succeeded" || phase === "Failed") continue;
      wanted.set(podKey(pod), pod);
    }
    for (const [key, w] of this.workers) {
      const want = wanted.get(key);
      if (want && want.metadata.uid === w.pod.metadata.uid) continue;
      this.workers.delete(key);
      this.status.forget(w.pod);
      await w.stop();
      this.o.logger.info({ node: this.o.node, pod: key }, "pod stopped");
    }
    for (const [key, pod] of wanted) {
      if (this.workers.has(key) || !this.admits(pod, wanted)) continue;
      const w = new PodWorker(pod, {
        client: this.o.client,
        runtime: this.o.runtime,
        node: this.o.node,
        nodeIp: this.o.nodeIp,
        podsDir: `${this.o.dir}/pods`,
        logsDir: `${this.o.dir}/logs`,
        apiServer: this.o.apiServer,
        nodePath: this.o.nodePath,
        logger: this.o.logger,
        setStatus: (p, s) => this.status.set(p, s),
      });
      this.workers.set(key, w);
      // Pods start side by side, as the kubelet's workers do; a slow one holds up no other.
      void w.sync().then(() => this.o.logger.info({ node: this.o.node, pod: key, ip: w.ip }, "pod started"));
    }
  }

  /**
   * Graceful deletion's second half: the API server set deletionTimestamp; the containers get
   * SIGTERM and SIGKILL after the grace period, then the pod is deleted for good with grace 0
   * (uid precondition, so a successor of the same name is never hit).
   */
  private terminate(pod: Pod): void {
    const key = podKey(pod);
    if (this.terminating.has(key)) return;
    const w = this.workers.get(key);
    const mine = w && w.pod.metadata.uid === pod.metadata.uid ? w : undefined;
    if (mine) {
      this.workers.delete(key);
      this.status.forget(mine.pod);
    }
    const graceMs = Number(pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
    const ns = pod.metadata.namespace ?? "default";
    const done = (async () => {
      try {
        await mine?.stop(graceMs);
        this.o.logger.info({ node: this.o.node, pod: key }, "pod terminated");
        await this.o.client
          .request("DELETE", podPath(ns, pod.metadata.name), {
            gracePeriodSeconds: 0,
            preconditions: { uid: pod.metadata.uid },
          })
          .catch((err: unknown) => {
            const code = apiStatusOf(err);
            if (code !== 404 && code !== 409) throw err;
          });
      } catch (err) {
        this.o.logger.warn(
          { node: this.o.node, pod: key, err: (err as Error).message },
          "pod deletion failed",
        );
      } finally {
        this.terminating.delete(key);
      }
    })();
    this.terminating.set(key, done);
  }

  /** A pod-network pod waits for the node's gate pods (the CNI agent) to be Ready. */
  private admits(pod: Pod, wanted: Map<string, Pod>): boolean {
    const gate = this.o.gate;
    if (!gate || pod.spec?.hostNetwork || gate(pod)) return true;
    return [...wanted.entries()].filter(([, p]) => gate(p)).every(([key]) => this.workers.get(key)?.ready());
  }

  private probe(): void {
    let gateReady = false;
    for (const w of this.workers.values()) {
      const before = w.ready();
      w.probe();
      if (!before && w.ready() && this.o.gate?.(w.pod)) gateReady = true;
    }
    if (gateReady || this.waiting()) this.schedule();
  }

  private waiting(): boolean {
    return this.source.objects().some((o) => !this.workers.has(podKey(o as Pod)));
  }
}

/** The latest status per pod, sent by merge patch on pods/status; retried with backoff while refused. */
class StatusManager {
  private readonly latest = new Map<string, { pod: Pod; status: Record<string, unknown> }>();
  private sending: Promise<void> | undefined;
  private readonly backoff = new Backoff(200, 5_000);
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
  ) {}

  set(pod: Pod, status: Record<string, unknown>): void {
    this.latest.set(podKey(pod), { pod, status });
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  forget(pod: Pod): void {
    this.latest.delete(podKey(pod));
  }

  async flushed(): Promise<void> {
    while (this.sending) await this.sending;
  }

  stop(): void {
    this.stopped = true;
    this.latest.clear();
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.latest.size > 0) {
      const [key, { pod, status }] = this.latest.entries().next().value!;
      this.latest.delete(key);
      try {
        await this.client.mergePatch(
          `${podPath(pod.metadata.namespace ?? "default", pod.metadata.name)}/status`,
          {
            status,
          },
        );
        this.backoff.reset();
      } catch (err) {
        if (apiStatusOf(err) === 404) continue;
        // Put it back unless a newer status came meanwhile.
        if (!this.latest.has(key)) this.latest.set(key, { pod, status });
        const wait = this.backoff.next();
        this.logger.debug(
          { pod: key, err: (err as Error).message, retryMs: wait },
          "pod status not sent; retrying",
        );
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}
