// The network-namespace container runtime (`ambientctl up --kube --netns`): a pod-network pod gets
// a netns wired by the node's CNI chain (bridge + host-local, then ambient-cni, which asks the node
// agent, as containerd would run it), a hostNetwork pod the node's netns; containers are the real
// binaries (or the echo app) started inside it. Readiness is each program's "ready" log line.

import type { Pod } from "@ambient/kube";
import { READY_MESSAGE } from "@ambient/ztunnel";
import { ECHO_READY_MESSAGE, echoCommand } from "../netns/echo-app.js";
import { BINARIES } from "../netns/mesh.js";
import { createPodNetns, deletePod, type PodNetns } from "../netns/pods.js";
import { type NetnsProcess, spawnInNetns } from "../netns/spawn.js";
import type { Topology } from "../netns/topology.js";
import {
  type ContainerRuntime,
  type ContainerSpec,
  type ImageKind,
  proxyFiles,
  type RunningContainer,
  type Sandbox,
} from "./runtime.js";

/** The line each program logs once it serves (ztunnel's is exported by the package). */
const READY_LINES: Record<ImageKind, RegExp | string> = {
  app: ECHO_READY_MESSAGE,
  ztunnel: READY_MESSAGE,
  cni: /node agent ready/,
  waypoint: /waypoint started/,
  controlplane: /control plane serving/,
};
// A start that has not logged its ready line by then is reported, and the kubelet restarts it.
const START_TIMEOUT_MS = 60_000;

export class NetnsRuntime implements ContainerRuntime {
  private readonly sandboxes = new Map<string, PodNetns>();

  constructor(
    private readonly topology: Topology,
    /** Called with each new pod netns (the kube-proxy stand-in writes its hosts file) and each removed one. */
    private readonly onSandbox: (netns: string, namespace: string) => Promise<void>,
    private readonly onRemoved: (netns: string) => Promise<void>,
  ) {}

  async runSandbox(pod: Pod, node: string): Promise<Sandbox> {
    const n = this.topology.node(node);
    if (pod.spec?.hostNetwork) return { ip: n.ip, hostNetwork: true, netns: n.netns };
    const sandbox = await createPodNetns(this.topology, n, {
      namespace: pod.metadata.namespace ?? "default",
      name: pod.metadata.name,
      ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
    });
    this.sandboxes.set(pod.metadata.uid ?? sandbox.netns, sandbox);
    await this.onSandbox(sandbox.netns, sandbox.namespace);
    return { ip: sandbox.ip, hostNetwork: false, netns: sandbox.netns };
  }

  async removeSandbox(pod: Pod, sandbox: Sandbox): Promise<void> {
    if (sandbox.hostNetwork) return;
    const key = pod.metadata.uid ?? sandbox.netns ?? "";
    const s = this.sandboxes.get(key);
    if (!s) return;
    this.sandboxes.delete(key);
    try {
      await deletePod(this.topology, s);
    } finally {
      await this.onRemoved(s.netns);
    }
  }

  async start(pod: Pod, sandbox: Sandbox, c: ContainerSpec): Promise<RunningContainer> {
    const netnsPath = `/var/run/netns/${sandbox.netns}`;
    const { cmd, args, env } = this.command(pod, c);
    const proc = await spawnInNetns(netnsPath, cmd, args, {
      logFile: c.logFile,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    });
    let ready = false;
    try {
      await proc.waitForLog(READY_LINES[c.image], START_TIMEOUT_MS);
      ready = true;
    } catch (err) {
      await proc.stop();
      throw new Error(
        `${c.name} in ${pod.metadata.namespace}/${pod.metadata.name} did not start: ${(err as Error).message} (log: ${c.logFile})`,
      );
    }
    return { ready: () => ready && proc.running, exited: proc.exited, stop: () => stopProcess(proc) };
  }

  private command(pod: Pod, c: ContainerSpec): { cmd: string; args: string[]; env: Record<string, string> } {
    const node = process.execPath;
    switch (c.image) {
      case "app":
        return {
          ...echoCommand({
            pod: pod.metadata.name,
            namespace: pod.metadata.namespace ?? "default",
            serviceAccount: pod.spec?.serviceAccountName ?? "default",
            node: pod.spec?.nodeName ?? "",
            ports: c.ports,
          }),
          env: {},
        };
      case "ztunnel":
        return { cmd: node, args: [BINARIES.ztunnel, ...c.args], env: { ...proxyFiles(c), ...c.env } };
      case "waypoint":
        return { cmd: node, args: [BINARIES.waypoint, ...c.args], env: { ...proxyFiles(c), ...c.env } };
      // In-cluster configuration, given as the kubeconfig the pod's volumes hold (see pod-volumes.ts).
      case "cni":
        return { cmd: node, args: [BINARIES.agent, ...c.args, "--kubeconfig", c.kubeconfig], env: c.env };
      case "controlplane":
        return {
          cmd: node,
          args: [BINARIES.controlplane, ...c.args, "--kubeconfig", c.kubeconfig],
          env: c.env,
        };
    }
  }
}

async function stopProcess(p: NetnsProcess): Promise<void> {
  await p.stop();
}
