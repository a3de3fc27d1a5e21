// The network-namespace container runtime (`ambientctl up --kube --netns`): a pod-network pod gets
// a netns wired by the node's CNI chain (bridge + host-local, then ambient-cni, which asks the node
// agent, as containerd would run it), a hostNetwork pod the node's netns; containers are the real
// binaries (or the echo app) started inside it (process-container.ts).

import type { Pod } from "@ambient/kube";
import { createPodNetns, deletePod, type PodNetns } from "../netns/pods.js";
import type { Topology } from "../netns/topology.js";
import { startProcessContainer } from "./process-container.js";
import type { ContainerRuntime, ContainerSpec, RunningContainer, Sandbox } from "./runtime.js";

const NEVER = new Promise<never>(() => {});

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
    // A client without ports (curl, sleep) is its netns: people run their commands in it.
    if (c.image === "app" && c.ports.length === 0)
      return { ready: () => true, exited: NEVER, stop: async () => {} };
    return startProcessContainer(`/var/run/netns/${sandbox.netns}`, pod, c);
  }
}
