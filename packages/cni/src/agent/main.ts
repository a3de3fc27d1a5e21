// ambient-cni-agent: the CNI node agent (a DaemonSet in a cluster; one process per node netns in
// `ambientctl up --netns`). Phases: labels and what we knew before a restart → serve ztunnel and
// reconcile → serve the plugin → install the plugin and chain it into the node's conflist →
// follow label changes. SIGTERM stops serving but leaves the plugin and rules in place (an upgrade
// restarts the agent; pods keep their redirection). `ambient-cni-agent uninstall` removes the
// plugin and its conflist entry.

import { join } from "node:path";
import { createLogger, errorMessage, findCode, isLogLevel, usage } from "@ambient/core";
import { installPlugin, uninstallPlugin } from "../install/install.js";
import { IptablesRedirection } from "../iptables/index.js";
import { NodeAgent } from "./agent.js";
import { FileAnnotator } from "./annotations.js";
import { manifestsClusterSource } from "./cluster-source.js";
import { startCniServer } from "./cni-server.js";
import { AGENT_OPTIONS, type AgentConfig, parseAgentConfig } from "./config.js";
import { PodRegistry } from "./pod-registry.js";
import { ZtunnelServer } from "./ztunnel-server.js";

export const AGENT_READY_MESSAGE = "node agent ready";

/** @public The package's bin script runs it (from dist). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usage("ambient-cni-agent [uninstall]", AGENT_OPTIONS)}\n`);
    return 0;
  }
  const uninstall = argv[0] === "uninstall";
  let config: AgentConfig;
  try {
    // uninstall needs only the CNI folders; the other required flags get placeholders.
    config = parseAgentConfig(
      uninstall ? ["--node-name", "-", "--manifests", "-", ...argv.slice(1)] : argv,
      env,
    );
    if (!isLogLevel(config.logLevel)) throw new Error(`--log-level: "${config.logLevel}" is not a log level`);
  } catch (err) {
    process.stderr.write(
      `ambient-cni-agent: ${errorMessage(err)}\n\n${usage("ambient-cni-agent", AGENT_OPTIONS)}\n`,
    );
    return 2;
  }
  const logger = createLogger({ level: config.logLevel, name: "ambient-cni-agent" });
  if (uninstall) {
    const { unchained } = await uninstallPlugin({ binDir: config.cniBinDir, confDir: config.cniConfDir });
    logger.info({ unchained, binDir: config.cniBinDir }, "ambient-cni removed");
    logger.flush();
    return 0;
  }

  const log = logger.child({ node: config.nodeName });
  const source = await manifestsClusterSource(config.manifests, log.child({ component: "source" }));
  let agent: NodeAgent | undefined;
  const ztunnels = new ZtunnelServer(
    config.ztunnelSocket,
    () => agent?.enrolledPods() ?? [],
    log.child({ component: "ztunnel-server" }),
  );
  let cni: Awaited<ReturnType<typeof startCniServer>> | undefined;
  try {
    // Phase 1: labels, then what we managed before a restart.
    await source.start();
    agent = new NodeAgent({
      nodeName: config.nodeName,
      clusterId: config.clusterId,
      source,
      registry: new PodRegistry(config.stateDir),
      redirection: new IptablesRedirection({ hostProbeSnat: config.hostProbeSnat, logger: log }),
      ztunnels,
      annotator: new FileAnnotator(config.stateDir),
      excludeNamespaces: config.excludeNamespaces,
      logger: log,
    });
    // Phase 2: serve ztunnel before reconciling, so a waiting ztunnel gets the replay promptly.
    await ztunnels.start();
    await agent.start();
    const a = agent;
    cni = await startCniServer({
      socketPath: config.cniSocket,
      onAdd: (req) => a.cniAdd(req),
      onDel: (req) => a.cniDel(req),
      logger: log,
    });
    // Phase 3: the plugin last, so the first pod it sees finds us serving.
    if (config.installPlugin) {
      const installed = await installPlugin({
        binDir: config.cniBinDir,
        confDir: config.cniConfDir,
        agentSocket: config.cniSocket,
        excludeNamespaces: config.excludeNamespaces,
      });
      log.info({ binary: installed.binary, conflist: installed.chain }, "ambient-cni installed and chained");
    }
  } catch (err) {
    log.fatal({ code: findCode(err), err }, `cannot start: ${errorMessage(err)}`);
    await Promise.allSettled([source.stop(), ztunnels.close(), cni?.close()]);
    logger.flush();
    return 1;
  }
  log.info(
    { cniSocket: config.cniSocket, ztunnelSocket: config.ztunnelSocket, state: join(config.stateDir) },
    AGENT_READY_MESSAGE,
  );
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "shutting down (plugin and rules stay in place)");
  await Promise.allSettled([cni.close(), ztunnels.close(), source.stop()]);
  logger.flush();
  return 0;
}
