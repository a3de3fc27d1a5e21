// ambient-cni-agent: the CNI node agent (a DaemonSet in a cluster, following the Kubernetes API;
// one process per node netns in `ambientctl up --netns`, following a folder). run.ts has its
// phases. SIGTERM stops serving but leaves the plugin and rules in place (an upgrade restarts the
// agent; pods keep their redirection), unless, in Kubernetes mode, the agent's DaemonSet is gone
// (removal.ts): then the plugin and its conflist entry go too, as `ambient-cni-agent uninstall`
// removes them.

import { createLogger, errorMessage, findCode, isLogLevel, usage, versionText } from "@ambient/core";
import { uninstallPlugin } from "../install/install.js";
import { AGENT_OPTIONS, type AgentConfig, parseAgentConfig } from "./config.js";
import { daemonSetRemoval } from "./removal.js";
import { type RunningAgent, runNodeAgent } from "./run.js";

/** Its package.json, from src/ and dist/ alike. */
const PACKAGE_JSON = new URL("../../package.json", import.meta.url);

/** @public The package's bin script runs it (from dist). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--version")) {
    process.stdout.write(`${versionText("ambient-cni-agent", PACKAGE_JSON, env)}\n`);
    return 0;
  }
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
  let running: RunningAgent;
  try {
    running = await runNodeAgent(config, log);
  } catch (err) {
    log.fatal({ code: findCode(err), err }, `cannot start: ${errorMessage(err)}`);
    logger.flush();
    return 1;
  }
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  const removal = config.daemonSet
    ? await daemonSetRemoval(
        config.cluster.kind === "kube" ? config.cluster.kubeconfig : undefined,
        config.daemonSet,
        log,
      )
    : { removed: false, why: "no DaemonSet to follow" };
  log.info(
    { signal, why: removal.why },
    removal.removed
      ? "shutting down for good (removing the plugin)"
      : "shutting down (plugin and rules stay in place)",
  );
  await running.stop();
  if (removal.removed) {
    const { unchained } = await uninstallPlugin({ binDir: config.cniBinDir, confDir: config.cniConfDir });
    log.info({ unchained, binDir: config.cniBinDir }, "ambient-cni removed");
  }
  logger.flush();
  return 0;
}
