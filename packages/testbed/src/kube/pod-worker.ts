// One pod on one node, as the kubelet's pod worker runs it: volumes → sandbox (the pod's IP) →
// containers (env from the downward API, paths resolved to the host) → status (phase, podIP,
// Ready from the containers' readiness) → on delete, containers stopped and the sandbox removed.
// A step that cannot happen yet (a ConfigMap not published) is retried with backoff; a container
// that exits is restarted with backoff, as restartPolicy Always does.

import { join } from "node:path";
import { Backoff, type Logger } from "@ambient/core";
import type { Container, Pod } from "@ambient/kube";
import { now } from "../apiserver/objects.js";
import type { KubeClient } from "./client.js";
import { containerLogFile } from "./container-logs.js";
import { fieldValue, PodVolumes, podKey, VOLUME_NOT_READY, type VolumeMount } from "./pod-volumes.js";
import {
  type ContainerRuntime,
  type ContainerSpec,
  imageKind,
  type RunningContainer,
  type Sandbox,
} from "./runtime.js";

export interface PodWorkerDeps {
  client: KubeClient;
  runtime: ContainerRuntime;
  node: string;
  nodeIp: string;
  /** The kubelet's folder for this pod's volumes. */
  podsDir: string;
  logsDir: string;
  apiServer: { host: string; port: number };
  /** Where a hostPath volume's node path is on this disk. */
  nodePath: (path: string) => string;
  logger: Logger;
  /** Sends the pod's status (the kubelet's status manager retries until it lands). */
  setStatus(pod: Pod, status: Record<string, unknown>): void;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

type ContainerDef = Container & {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  volumeMounts?: VolumeMount[];
};

export class PodWorker {
  private volumes: PodVolumes | undefined;
  private sandbox: Sandbox | undefined;
  private readonly containers = new Map<string, RunningContainer>();
  private stopped = false;
  private readyReported: boolean | undefined;
  private readonly startedAt = now();
  private readySince = this.startedAt;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff(500, 10_000);
  readonly done: Promise<void>;
  private finish = () => {};

  constructor(
    readonly pod: Pod,
    private readonly d: PodWorkerDeps,
  ) {
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  get key(): string {
    return podKey(this.pod);
  }

  get ip(): string | undefined {
    return this.sandbox?.ip;
  }

  /** Everything the pod runs is started (containers may not be ready yet). */
  get running(): boolean {
    return this.containers.size === this.defs().length && this.containers.size > 0;
  }

  ready(): boolean {
    return this.running && [...this.containers.values()].every((c) => c.ready());
  }

  /** Starts what is not started yet; schedules itself again while a step cannot happen. */
  async sync(): Promise<void> {
    if (this.stopped) return;
    try {
      this.volumes ??= await PodVolumes.setUp({
        client: this.d.client,
        pod: this.pod,
        dir: join(
          this.d.podsDir,
          `${this.pod.metadata.namespace}_${this.pod.metadata.name}_${this.pod.metadata.uid}`,
        ),
        apiServer: this.d.apiServer,
        nodePath: this.d.nodePath,
        logger: this.d.logger,
      });
      if (this.stopped) return;
      this.sandbox ??= await this.d.runtime.runSandbox(this.pod, this.d.node);
      for (const def of this.defs()) {
        if (this.stopped || this.containers.has(def.name)) continue;
        const running = await this.d.runtime.start(this.pod, this.sandbox, this.resolve(def));
        this.containers.set(def.name, running);
        void running.exited.then(() => this.onExit(def.name, running));
      }
      this.backoff.reset();
      this.report();
    } catch (err) {
      const why = (err as Error).message;
      // Waiting for a ConfigMap (the root the control plane publishes) is part of a normal start.
      const level = (err as { code?: string }).code === VOLUME_NOT_READY ? "info" : "warn";
      this.d.logger[level]({ pod: this.key, err: why }, "pod not started yet; retrying");
      this.d.setStatus(this.pod, {
        phase: "Pending",
        conditions: [{ type: "Ready", status: "False", reason: "ContainersNotReady", message: why }],
      });
      this.later();
    }
  }

  /** The readiness probe's turn: reports a change of Ready. */
  probe(): void {
    if (this.running && this.ready() !== this.readyReported) this.report();
  }

  /** Stops the containers (SIGKILL after `graceMs`, the deletion's grace period) and removes the sandbox. */
  async stop(graceMs?: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await Promise.allSettled([...this.containers.values()].map((c) => c.stop(graceMs)));
    this.containers.clear();
    this.volumes?.stop();
    if (this.sandbox) {
      await this.d.runtime
        .removeSandbox(this.pod, this.sandbox)
        .catch((err: Error) =>
          this.d.logger.warn({ pod: this.key, err: err.message }, "sandbox removal failed"),
        );
    }
    this.finish();
  }

  private defs(): ContainerDef[] {
    return (this.pod.spec?.containers ?? []) as ContainerDef[];
  }

  private onExit(name: string, c: RunningContainer): void {
    if (this.stopped || this.containers.get(name) !== c) return;
    this.containers.delete(name);
    this.d.logger.warn({ pod: this.key, container: name }, "container exited; restarting");
    this.report();
    this.later();
  }

  private later(): void {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.sync(), this.backoff.next());
  }

  private report(): void {
    const ready = this.ready();
    // Controllers count a pod available minReadySeconds after Ready's lastTransitionTime.
    if (ready !== this.readyReported) this.readySince = now();
    this.readyReported = ready;
    const flag = ready ? "True" : "False";
    const conditions = [
      { type: "PodScheduled", status: "True" },
      { type: "Initialized", status: "True" },
      { type: "ContainersReady", status: flag, lastTransitionTime: this.readySince },
      { type: "Ready", status: flag, lastTransitionTime: this.readySince },
    ];
    this.d.setStatus(this.pod, {
      phase: "Running",
      hostIP: this.d.nodeIp,
      hostIPs: [{ ip: this.d.nodeIp }],
      podIP: this.sandbox!.ip,
      podIPs: [{ ip: this.sandbox!.ip }],
      startTime: this.startedAt,
      conditions,
      containerStatuses: this.defs().map((def) => ({
        name: def.name,
        image: def.image ?? "",
        imageID: "",
        ready: this.containers.get(def.name)?.ready() ?? false,
        started: this.containers.has(def.name),
        restartCount: 0,
        state: this.containers.has(def.name)
          ? { running: { startedAt: this.startedAt } }
          : { waiting: { reason: "ContainerCreating" } },
      })),
    });
  }

  /** The container as the runtime starts it: env resolved, container paths mapped to the host. */
  private resolve(def: ContainerDef): ContainerSpec {
    const volumes = this.volumes!;
    const mounts = def.volumeMounts ?? [];
    const host = (p: string) => volumes.resolve(mounts, p);
    const mapPath = (s: string) => {
      const eq = s.indexOf("=");
      if (s.startsWith("/")) return host(s) ?? s;
      if (s.startsWith("--") && eq > 0 && s[eq + 1] === "/")
        return `${s.slice(0, eq + 1)}${host(s.slice(eq + 1)) ?? s.slice(eq + 1)}`;
      return s;
    };
    const env: Record<string, string> = { ...volumes.serviceEnv() };
    for (const e of def.env ?? []) {
      const field = e.valueFrom?.fieldRef?.fieldPath;
      if (e.valueFrom && !field)
        throw new Error(
          `container ${def.name} env ${e.name}: only value and fieldRef are supported by this kubelet`,
        );
      env[e.name] = field
        ? fieldValue(this.pod, field, this.sandbox!.ip, this.d.nodeIp)
        : mapPath(expand(e.value ?? "", env));
    }
    return {
      name: def.name,
      image: imageKind(def.image),
      args: [...(def.command ?? []), ...(def.args ?? [])].map(mapPath),
      env,
      ports: (def.ports ?? []).map((p) => p.containerPort),
      file: host,
      kubeconfig: volumes.kubeconfigPath,
      logFile: containerLogFile(this.d.logsDir, this.pod, def.name),
    };
  }
}

/** `$(NAME)` refers to a variable defined earlier in the container's env; `$$(` is a literal `$(`. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    name === undefined ? "$(" : (env[name] ?? m),
  );
}
