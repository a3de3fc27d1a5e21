// The loopback container runtime (`ambientctl up --kube` without --netns): every pod gets its own
// 127.x address from its node's /24 and its containers run in this process — an echo server for
// an app, ztunnel, the waypoint or the control plane — as LocalMesh runs them today, but configured
// from the pod (Istio's env, the projected token, the root ConfigMap, the in-cluster kubeconfig).
// What only loopback changes in a pod's configuration: listeners on the pod's own address (all
// pods share one loopback), Service names dialled through loopback-services.ts, no in-pod mode.

import { ControlPlane, parseControlPlaneConfig } from "@ambient/controlplane";
import { createLogger, type Logger, type LogLevel } from "@ambient/core";
import type { Pod } from "@ambient/kube";
import { parseWaypointConfig, Waypoint } from "@ambient/waypoint";
import { parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { EchoServer } from "../local/echo-server.js";
import { openContainerLog } from "./container-logs.js";
import type { LoopbackServices } from "./loopback-services.js";
import { CONTROL_PLANE_TLS_PORT } from "./mesh-objects.js";
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
  /** Service names the proxies dial (CA_ADDRESS, XDS_ADDRESS) → a relay to the Service's pods. */
  services?: LoopbackServices;
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
        // Admin on the pod's own address (the node's, for a hostNetwork pod): every node shares
        // this machine's loopback (LocalMesh does the same). No in-pod mode: loopback pods have no
        // network namespace to capture, so ztunnel serves them on their addresses (SOCKS5) and the
        // CNI agent's socket (INPOD_UDS, the chart sets it) is not used.
        const { INPOD_UDS: _inpod, ...env } = c.env;
        const config = parseZtunnelConfig(["--admin-on-node-ip", "--log-level", this.o.logLevel, ...c.args], {
          ...proxyFiles(c),
          NODE_IP: sandbox.ip,
          ...(await this.dialled(env)),
        });
        const z = await Ztunnel.start(config, { logger });
        return { ready: () => z.readiness().ready, exited: NEVER, stop: () => z.stop() };
      }
      case "waypoint": {
        const config = parseWaypointConfig(["--admin-on-pod-ip", "--log-level", this.o.logLevel, ...c.args], {
          ...proxyFiles(c),
          ...(await this.dialled(c.env)),
        });
        const w = await Waypoint.start(config, { logger });
        return { ready: () => w.readiness().ready, exited: NEVER, stop: () => w.stop() };
      }
      case "controlplane":
        return this.controlPlane(sandbox, c, logger);
      case "cni":
        return this.cniStandIn(pod, logger);
    }
  }

  /**
   * The CNI agent's container (deploy/charts/ambient installs it on every node): loopback pods have
   * no network namespace to capture and there is no CNI runtime to chain into, so it only says so
   * and is Ready, which keeps the DaemonSet's rollout and `helm install --wait` what they are on a
   * cluster. Transparent capture is --netns.
   */
  private cniStandIn(pod: Pod, logger: Logger): RunningContainer {
    logger.info(
      { node: pod.spec?.nodeName },
      "loopback cluster: no pod networks to capture, nothing installed; ztunnel serves pods on their addresses (use --netns for capture)",
    );
    return { ready: () => true, exited: NEVER, stop: async () => {} };
  }

  /**
   * The proxies' env with the control plane's address as this machine reaches it: a Service name
   * becomes its relay (loopback-services.ts), and the certificate is checked against that name.
   */
  private async dialled(env: Record<string, string>): Promise<Record<string, string>> {
    const services = this.o.services;
    if (!services) return env;
    const out = { ...env };
    for (const key of ["CA_ADDRESS", "XDS_ADDRESS"]) {
      const value = env[key];
      if (!value) continue;
      out[key] = await services.resolve(value);
      if (out[key] !== value) out.CONTROL_PLANE_SAN ??= value.slice(0, value.lastIndexOf(":"));
    }
    return out;
  }

  /**
   * istiod's container: its own configuration (args and env, as the binary parses them) in
   * Kubernetes mode through the pod's in-cluster kubeconfig, with TLS on the pod's own address
   * (every "pod" shares this machine's loopback) and that address in its certificate.
   */
  private async controlPlane(sandbox: Sandbox, c: ContainerSpec, logger: Logger): Promise<RunningContainer> {
    const parsed = parseControlPlaneConfig([...c.args, "--kubeconfig", c.kubeconfig], {
      ...c.env,
      AMBIENT_TLS_LISTEN: `${sandbox.ip}:${CONTROL_PLANE_TLS_PORT}`,
      AMBIENT_MONITORING_LISTEN: `${sandbox.ip}:15014`,
    });
    const { kube: k, notes: _notes, ...rest } = parsed;
    if (!k) throw new Error("the control plane's container is not in Kubernetes mode");
    const kube = {
      ...k,
      servingIps: [...new Set([...k.servingIps, sandbox.ip])],
      // The harness's Deployment controller (controllers/) would now run the waypoint controller's
      // Deployments, but no test has yet taken a Gateway through it to a serving waypoint on
      // loopback (its pod off the host network, reached through its Service); until one does,
      // waypoint pods are applied as pods on this cluster (README) and the controller stays off.
      waypointImage: false as const,
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    };
    const cp = await ControlPlane.start({ ...rest, kube, logger });
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
