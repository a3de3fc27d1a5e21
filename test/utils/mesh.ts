// An in-process local mesh for tests: control plane + one ztunnel per Node + echo servers, the
// same LocalMesh that `ambientctl up` runs. Each test file uses its own 127.N.x.y range so files
// running in parallel never share an address.

import { createMemoryLogger } from "@ambient/core";
import { LocalMesh, type LocalMeshOptions } from "@ambient/testbed";
import { type TempDir, tempDir } from "./index.js";

export interface TestMesh {
  mesh: LocalMesh;
  config: TempDir;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startMesh(
  files: Record<string, string>,
  opts: Pick<LocalMeshOptions, "ztunnelDeps" | "ztunnelArgs"> & {
    /** Runs on the empty state folder before anything starts (e.g. to plant a CA). */
    prepareState?: (stateDir: string) => Promise<void>;
  } = {},
): Promise<TestMesh> {
  const config = await tempDir("ambient-mesh-");
  const state = await tempDir("ambient-mesh-state-");
  for (const [name, text] of Object.entries(files)) await config.write(name, text);
  await opts.prepareState?.(state.path);
  const { logger, records } = createMemoryLogger("debug");
  const mesh = await LocalMesh.start({
    dir: config.path,
    listen: { host: "127.0.0.1", port: 0 },
    stateDir: state.path,
    logLevel: "debug",
    logger,
    ...(opts.ztunnelDeps ? { ztunnelDeps: opts.ztunnelDeps } : {}),
    ...(opts.ztunnelArgs ? { ztunnelArgs: opts.ztunnelArgs } : {}),
  });
  await mesh.settled();
  return {
    mesh,
    config,
    logs: records,
    stop: async () => {
      await mesh.stop();
      await config.cleanup();
      await state.cleanup();
    },
  };
}

/** Fetches `/metrics` of a node's ztunnel (port 15020 on its address). */
export async function scrape(nodeIp: string): Promise<string> {
  const res = await fetch(`http://${nodeIp}:15020/metrics`);
  return res.text();
}

/** The value of one sample whose labels include all of `labels`, or 0. */
/** Log records with every given field equal (dotted access-log names are top-level keys). */
export function logsWith(
  logs: Record<string, unknown>[],
  fields: Record<string, unknown>,
): Record<string, unknown>[] {
  return logs.filter((l) => Object.entries(fields).every(([k, v]) => l[k] === v));
}

export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}
