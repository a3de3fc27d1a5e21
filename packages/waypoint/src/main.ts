// The waypoint binary: configuration from flags and environment, then serve until SIGTERM/SIGINT.

import { createLogger, errorMessage, isLogLevel, usage, versionText } from "@ambient/core";
import { parseWaypointConfig, WAYPOINT_OPTIONS } from "./config.js";
import { Waypoint } from "./waypoint.js";

/** Its package.json, from src/ and dist/ alike. */
const PACKAGE_JSON = new URL("../package.json", import.meta.url);

/** @public The package's bin script runs it (from dist). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--version")) {
    process.stdout.write(`${versionText("waypoint", PACKAGE_JSON, env)}\n`);
    return 0;
  }
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usage("waypoint", WAYPOINT_OPTIONS)}\n`);
    return 0;
  }
  let config: ReturnType<typeof parseWaypointConfig>;
  try {
    config = parseWaypointConfig(argv, env);
    if (!isLogLevel(config.logLevel)) throw new Error(`--log-level: "${config.logLevel}" is not a log level`);
  } catch (err) {
    process.stderr.write(`waypoint: ${errorMessage(err)}\n\n${usage("waypoint", WAYPOINT_OPTIONS)}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.logLevel, name: "waypoint" });
  let w: Waypoint;
  try {
    w = await Waypoint.start(config, { logger });
  } catch (err) {
    logger.fatal({ err }, `cannot start: ${errorMessage(err)}`);
    return 1;
  }
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  logger.info({ signal }, "shutting down");
  await w.drainAndStop();
  logger.flush();
  return 0;
}
