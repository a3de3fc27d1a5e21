// ambient-controlplane: parse configuration, start serving, stop cleanly on SIGINT/SIGTERM.

import { createLogger, errorMessage, findCode, isLogLevel, usage, versionText } from "@ambient/core";
import { CONTROLPLANE_OPTIONS, parseControlPlaneConfig } from "./config.js";
import { ControlPlane } from "./server/controlplane.js";

/** Its package.json, from src/ and dist/ alike. */
const PACKAGE_JSON = new URL("../package.json", import.meta.url);

/** @public The package's bin script runs it (from dist). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--version")) {
    process.stdout.write(`${versionText("ambient-controlplane", PACKAGE_JSON, env)}\n`);
    return 0;
  }
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usage("ambient-controlplane", CONTROLPLANE_OPTIONS)}\n`);
    return 0;
  }
  let config: ReturnType<typeof parseControlPlaneConfig>;
  try {
    config = parseControlPlaneConfig(argv, env);
    if (!isLogLevel(config.logLevel)) throw new Error(`--log-level: "${config.logLevel}" is not a log level`);
  } catch (err) {
    process.stderr.write(
      `ambient-controlplane: ${errorMessage(err)}\n\n${usage("ambient-controlplane", CONTROLPLANE_OPTIONS)}\n`,
    );
    return 2;
  }
  const logger = createLogger({ level: config.logLevel, name: "ambient-controlplane" });
  for (const note of config.notes) logger.info(note);
  let cp: ControlPlane;
  try {
    const { kube, ...rest } = config;
    cp = await ControlPlane.start({ ...rest, ...(kube ? { kube } : {}), logger });
  } catch (err) {
    logger.fatal({ code: findCode(err), err }, `cannot start: ${errorMessage(err)}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await cp.stop();
  logger.flush();
  return 0;
}
