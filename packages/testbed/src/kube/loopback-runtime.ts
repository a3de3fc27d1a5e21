// The loopback container runtime (`ambientctl up --kube` without --netns): every pod gets its own
// 127.x address from its node's /24 and its containers run in this process — an echo server for
// an app, ztunnel, the waypoint or the control plane — as LocalMesh runs them today, but configured
// from the pod (Istio's env, the projected token, the root ConfigMap, the in-cluster kubeconfig).

import { ControlPlane } from "@ambient/controlplane";
import { createLogger, type Logger, type LogLevel } from "@ambient/core";
import type { Pod } from "@ambient/kube";
import { parseWaypointConfig, Waypoint } from "@ambient/waypoint";
import { parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { EchoServer } from "../local/echo-server.js";
import { openContainerLog } from "./container-logs.js";
import { CONTROL_PLANE_STATE_DIR, CONTROL_PLANE_TLS_PORT } from "./mesh-objects.js";
import {
  type ContainerRuntime,
  type ContainerSpec,
  proxyFiles,
  type RunningContainer,
  type Sandbox,
} from "./runtime.js";

export interface LoopbackRuntimeOptions {
  /** Node name → its 127.x.y.1 address; pods get .10 to .254 of the same /24. */
  nodes: ReadonlyMap<string, string>;
  logLevel: LogLevel;
  logger: Logger;
  /** Tests: a quicker watchdog and backoff for the control plane's reflectors. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

const FIRST_POD_HOST = 10;
const LAST_POD_HOST = 254;
const NEVER = new Promise<never>(() => {});

export class LoopbackRuntime implements ContainerRuntime {
  /** Per node, the pod host numbers in use. */
  private readonly used = new Map<string, Set<number>>();

  constructor(private readonly o: LoopbackRuntimeOptions) {}

  async runSandbox(pod: Pod, node: string): Promise<Sandbox> {
    const nodeIp = this.o.nodes.get(node);
    if (!nodeIp) throw new Error(`node ${node} has no address in this cluster`);
    if (pod.spec?.hostNetwork) return { ip: nodeIp, hostNetwork: true };
    const used = this.used.get(node) ?? new Set<number>();
    this.used.set(node, used);
    for (let host = FIRST_POD_HOST; host <= LAST_POD_HOST; host++) {
      if (used.has(host)) continue;
      used.add(host);
      return { ip: nodeIp.replace(/\.\d+$/, `.${host}`), hostNetwork: false };
    }
    throw new Error(`node ${node} has no pod address left (${LAST_POD_HOST - FIRST_POD_HOST + 1} in use)`);
  }

  async removeSandbox(pod: Pod, sandbox: Sandbox): Promise<void> {
    if (sandbox.hostNetwork) return;
    this.used.get(pod.spec?.nodeName ?? "")?.delete(Number(sandbox.ip.split(".")[3]));
  }

  async start(pod: Pod, sandbox: Sandbox, c: ContainerSpec): Promise<RunningContainer> {
    // The component's log lines go to the container's log file, as a container's stdout does, so
    // `kubectl logs` reads them; an app's file stays empty (the echo server logs nothing).
    const out = await openContainerLog(c.logFile);
    const logger = createLogger({ level: this.o.logLevel, destination: out });
    try {
      const running = await this.run(pod, sandbox, c, logger);
      return {
        ...running,
        stop: async () => {
          await running.stop();
          await new Promise((r) => out.end(r));
        },
      };
    } catch (err) {
      out.end();
      throw err;
    }
  }

  private async run(pod: Pod, sandbox: Sandbox, c: ContainerSpec, logger: Logger): Promise<RunningContainer> {
    switch (c.image) {
      case "app":
        return this.app(pod, sandbox, c);
      case "ztunnel": {
        // Admin on the node's address: every node shares this machine's loopback (LocalMesh does the same).
        const config = parseZtunnelConfig(["--admin-on-node-ip", "--log-level", this.o.logLevel, ...c.args], {
          ...proxyFiles(c),
          NODE_IP: sandbox.ip,
          ...c.env,
        });
        const z = await Ztunnel.start(config, { logger });
        return { ready: () => z.readiness().ready, exited: NEVER, stop: () => z.stop() };
      }
      case "waypoint": {
        const config = parseWaypointConfig(["--admin-on-pod-ip", "--log-level", this.o.logLevel, ...c.args], {
          ...proxyFiles(c),
          ...c.env,
        });
        const w = await Waypoint.start(config, { logger });
        return { ready: () => w.readiness().ready, exited: NEVER, stop: () => w.stop() };
      }
      case "controlplane":
        return this.controlPlane(sandbox, c, logger);
      case "cni":
        throw new Error(
          "the loopback runtime has no pod networks to capture: the CNI agent runs with --netns",
        );
    }
  }

  /**
   * istiod's container: Kubernetes mode through the pod's in-cluster kubeconfig, TLS on the pod's
   * own address (every "pod" shares this machine's loopback), its CA kept in the pod's volume.
   */
  private async controlPlane(sandbox: Sandbox, c: ContainerSpec, logger: Logger): Promise<RunningContainer> {
    const stateDir = c.file(CONTROL_PLANE_STATE_DIR);
    if (!stateDir) throw new Error(`the control plane's pod mounts no volume at ${CONTROL_PLANE_STATE_DIR}`);
    const kube = {
      kubeconfig: c.kubeconfig,
      tlsListen: { host: sandbox.ip, port: CONTROL_PLANE_TLS_PORT },
      servingIps: [sandbox.ip],
      // Nothing here turns a Deployment into pods, so the waypoint controller's Deployments would
      // never run: waypoint pods are applied as pods on this cluster (README).
      waypointImage: false as const,
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    };
    const cp = await ControlPlane.start({
      kube,
      stateDir,
      trustDomain: "cluster.local",
      clusterId: "Kubernetes",
      rootNamespace: "istio-system",
      logger,
    });
    return { ready: () => true, exited: NEVER, stop: () => cp.stop() };
  }

  private async app(pod: Pod, sandbox: Sandbox, c: ContainerSpec): Promise<RunningContainer> {
    const echo = new EchoServer({
      pod: pod.metadata.name,
      namespace: pod.metadata.namespace ?? "default",
      serviceAccount: pod.spec?.serviceAccountName ?? "default",
      node: pod.spec?.nodeName ?? "",
    });
    try {
      for (const port of c.ports) await echo.listen(sandbox.ip, port);
    } catch (err) {
      await echo.close();
      throw err;
    }
    return { ready: () => true, exited: NEVER, stop: () => echo.close() };
  }
}
