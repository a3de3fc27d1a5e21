// The ztunnel binary: configuration from flags and Istio's env names, then run until SIGTERM or
// SIGINT, which drain open connections up to --drain-deadline and exit 0.

import { createLogger, errorMessage, isLogLevel, usage, versionText } from "@ambient/core";
import { parseZtunnelConfig, ZTUNNEL_OPTIONS } from "./config.js";
import { Ztunnel } from "./ztunnel.js";

/** Its package.json, from src/ and dist/ alike. */
const PACKAGE_JSON = new URL("../package.json", import.meta.url);

/** @public The package's bin script runs it (from dist). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--version")) {
    process.stdout.write(`${versionText("ztunnel", PACKAGE_JSON, env)}\n`);
    return 0;
  }
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usage("ztunnel", ZTUNNEL_OPTIONS)}\n`);
    return 0;
  }
  let config: ReturnType<typeof parseZtunnelConfig>;
  try {
    config = parseZtunnelConfig(argv, env);
    if (!isLogLevel(config.logLevel)) throw new Error(`--log-level: "${config.logLevel}" is not a log level`);
  } catch (err) {
    process.stderr.write(`ztunnel: ${errorMessage(err)}\n\n${usage("ztunnel", ZTUNNEL_OPTIONS)}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.logLevel, name: "ztunnel" });
  let quit!: () => void;
  const quitting = new Promise<void>((resolve) => {
    quit = resolve;
  });
  let z: Ztunnel;
  try {
    z = await Ztunnel.start(config, { logger, onQuit: () => quit() });
  } catch (err) {
    logger.fatal({ err }, `cannot start: ${errorMessage(err)}`);
    return 1;
  }
  const signal = await Promise.race([
    new Promise<string>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
    }),
    quitting.then(() => "quitquitquit"),
  ]);
  if (signal !== "quitquitquit") {
    logger.info({ signal }, "shutting down");
    await z.drainAndStop();
  }
  logger.flush();
  return 0;
}
