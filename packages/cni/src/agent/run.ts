// One running node agent, in its start-up phases: labels (a manifests folder or the Kubernetes API)
// and what we knew before a restart → serve ztunnel and reconcile → serve the plugin → install the
// plugin and chain it into the node's conflist → follow label changes. Readiness turns true when
// the last phase is done. main.ts runs it; tests run it with a stand-in for iptables.

import { join } from "node:path";
import type { Logger } from "@ambient/core";
import { installPlugin } from "../install/install.js";
import { IptablesRedirection } from "../iptables/index.js";
import { type CaptureEvents, NodeAgent, type Redirection } from "./agent.js";
import { FileAnnotator, type PodAnnotator } from "./annotations.js";
import { type ClusterSource, kubeCluster, manifestsClusterSource } from "./cluster-source.js";
import { type CniServer, startCniServer } from "./cni-server.js";
import type { AgentConfig } from "./config.js";
import { PodRegistry } from "./pod-registry.js";
import { AgentReadiness, startReadinessServer } from "./readiness.js";
import { ZtunnelServer } from "./ztunnel-server.js";

/** Logged once every phase is done; `ambientctl up --netns` waits for it. */
const AGENT_READY_MESSAGE = "node agent ready";

export interface AgentDeps {
  /** The in-pod rules and host probe SNAT; real iptables unless a test brings its own. */
  redirection?: Redirection;
  /** Retry pacing for the Kubernetes API (tests shorten it). */
  kubeBackoff?: { initialMs: number; maxMs: number };
}

export interface RunningAgent {
  agent: NodeAgent;
  readiness: AgentReadiness;
  readinessPort: number;
  /** Stops serving; the plugin and the rules stay in place (an upgrade restarts the agent). */
  stop(): Promise<void>;
}

export async function runNodeAgent(
  config: AgentConfig,
  log: Logger,
  deps: AgentDeps = {},
): Promise<RunningAgent> {
  const readiness = new AgentReadiness({
    source:
      config.cluster.kind === "kube"
        ? "the Kubernetes API has not been listed yet"
        : `the manifests in ${config.cluster.dir} have not been read yet`,
    ztunnel: `not yet listening for ztunnel on ${config.ztunnelSocket}`,
    cni: `not yet listening for the CNI plugin on ${config.cniSocket}`,
    ...(config.installPlugin && { plugin: `ambient-cni not yet installed in ${config.cniConfDir}` }),
  });
  // Up first, answering 503 with the phase it waits for: a probe during start-up learns why.
  const probe = await startReadinessServer(config.readinessPort, readiness, log);
  const sourceLog = log.child({ component: "source" });
  let source: ClusterSource;
  let annotator: PodAnnotator & { close?(): void };
  let events: CaptureEvents | undefined;
  if (config.cluster.kind === "kube") {
    const kube = await kubeCluster(config.cluster.kubeconfig, config.nodeName, sourceLog, {
      ...(deps.kubeBackoff && { backoff: deps.kubeBackoff }),
    });
    source = kube.source;
    annotator = kube.annotator;
    events = kube.events;
  } else {
    source = await manifestsClusterSource(config.cluster.dir, sourceLog);
    annotator = new FileAnnotator(config.stateDir);
  }
  let agent: NodeAgent | undefined;
  const ztunnels = new ZtunnelServer(
    config.ztunnelSocket,
    () => agent?.enrolledPods() ?? [],
    log.child({ component: "ztunnel-server" }),
  );
  let cni: CniServer | undefined;
  const stop = async () => {
    annotator.close?.();
    await Promise.allSettled([cni?.close(), ztunnels.close(), source.stop()]);
    await new Promise<void>((resolve) => probe.server.close(() => resolve()));
  };
  try {
    // Phase 1: labels, then what we managed before a restart.
    await source.start();
    readiness.done("source");
    agent = new NodeAgent({
      nodeName: config.nodeName,
      clusterId: config.clusterId,
      source,
      registry: new PodRegistry(config.stateDir),
      redirection:
        deps.redirection ??
        new IptablesRedirection({
          hostProbeSnat: config.hostProbeSnat,
          dnsCapture: config.dnsCapture,
          logger: log,
        }),
      ztunnels,
      annotator,
      ...(events && { events }),
      excludeNamespaces: config.excludeNamespaces,
      logger: log,
    });
    // Phase 2: serve ztunnel before reconciling, so a waiting ztunnel gets the replay promptly.
    await ztunnels.start();
    readiness.done("ztunnel");
    await agent.start();
    const a = agent;
    cni = await startCniServer({
      socketPath: config.cniSocket,
      onAdd: (req) => a.cniAdd(req),
      onDel: (req) => a.cniDel(req),
      logger: log,
    });
    readiness.done("cni");
    // Phase 3: the plugin last, so the first pod it sees finds us serving.
    if (config.installPlugin) {
      const installed = await installPlugin({
        binDir: config.cniBinDir,
        confDir: config.cniConfDir,
        agentSocket: config.cniSocket,
        excludeNamespaces: config.excludeNamespaces,
        copyNode: config.copyNode,
      });
      log.info({ binary: installed.binary, conflist: installed.chain }, "ambient-cni installed and chained");
      readiness.done("plugin");
    }
  } catch (err) {
    await stop();
    throw err;
  }
  log.info(
    {
      cniSocket: config.cniSocket,
      ztunnelSocket: config.ztunnelSocket,
      state: join(config.stateDir),
      cluster: config.cluster,
      readinessPort: probe.port,
    },
    AGENT_READY_MESSAGE,
  );
  return { agent, readiness, readinessPort: probe.port, stop };
}
