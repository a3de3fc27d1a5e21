// ambient-cni: the chained CNI plugin's entry. A runtime execs it once per command with CNI_* in
// the environment and the network config on stdin; it answers on stdout (a result, or an error
// object and a non-zero exit). Only node builtins are imported here and below: start-up time is
// paid on every pod sandbox.

import { existsSync } from "node:fs";
import { callAgent } from "./agent-client.js";
import { AGENT_TIMEOUT_MS, type PluginDeps, runCommand } from "./commands.js";
import { parsePluginConfig, replyVersion } from "./config.js";
import { type CniEnv, parseCniEnv } from "./env.js";
import { CniCode, CniError, errorJson, LATEST_VERSION, SUPPORTED_VERSIONS } from "./spec.js";

export const ABOUT = "ambient-cni: chained CNI plugin that enrols pods in the Ambient mesh";

export interface PluginIo {
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Runs one invocation; returns the exit code (0, or 1 with an error object on stdout). */
export async function main(
  env: Readonly<Record<string, string | undefined>>,
  io: PluginIo = processIo(),
  deps: Partial<PluginDeps> = {},
): Promise<number> {
  let version = LATEST_VERSION;
  try {
    let cniEnv: CniEnv;
    try {
      cniEnv = parseCniEnv(env);
    } catch (err) {
      if (!env.CNI_COMMAND)
        io.stderr(`${ABOUT}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`);
      throw err;
    }
    // VERSION ignores stdin, as libcni's skel does: a runtime may send nothing and keep it open.
    if (cniEnv.command === "VERSION") {
      io.stdout(`${JSON.stringify({ cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS })}\n`);
      return 0;
    }
    let stdin: string;
    try {
      stdin = await io.readStdin();
    } catch (err) {
      throw new CniError(
        CniCode.IO_FAILURE,
        "error reading the network config from stdin",
        (err as Error).message,
      );
    }
    version = replyVersion(stdin);
    const config = parsePluginConfig(stdin);
    const out = await runCommand(cniEnv, config, {
      callAgent,
      netnsExists: existsSync,
      log: (line) => io.stderr(`${line}\n`),
      timeoutMs: AGENT_TIMEOUT_MS,
      ...deps,
    });
    if (out) io.stdout(out);
    return 0;
  } catch (err) {
    const cniErr =
      (err as { name?: unknown })?.name === "CniError"
        ? (err as CniError)
        : new CniError(CniCode.INTERNAL, `ambient-cni bug: ${(err as Error)?.stack ?? String(err)}`);
    io.stdout(errorJson(cniErr, version));
    return 1;
  }
}

function processIo(): PluginIo {
  return {
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  };
}
