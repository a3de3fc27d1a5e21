// `ambientctl up [-f DIR]`: the local mesh. For now the control plane on a manifests folder
// (default `examples/`), serving on loopback and following edits; the ztunnels and echo servers
// join it in the next releases. Ctrl-C stops everything it started.

import { resolve } from "node:path";
import { ControlPlane } from "@ambient/controlplane";
import { createLogger, type EnvSource, type OptionSpec, parseOptions } from "@ambient/core";
import { fetchMeshView } from "../xds-view.js";
import { normalizeShortFlags, renderView } from "./xds.js";

export const UP_OPTIONS: readonly OptionSpec[] = [
  { flag: "file", kind: "string", default: "examples", description: "manifests folder (-f)" },
  { flag: "listen", kind: "hostport", default: "127.0.0.1:15010", description: "control plane gRPC address" },
  {
    flag: "state-dir",
    env: "AMBIENT_STATE_DIR",
    kind: "string",
    default: ".ambient",
    description: "CA root and node tokens",
  },
  {
    flag: "log-level",
    env: "LOG_LEVEL",
    kind: "string",
    default: "warn",
    description: "component log level",
  },
  {
    flag: "exit-after-start",
    kind: "bool",
    default: "false",
    description: "print the mesh and exit (for scripts)",
  },
];

export async function upCommand(argv: string[], env: EnvSource, out: (s: string) => void): Promise<number> {
  const { values } = parseOptions(UP_OPTIONS, normalizeShortFlags(argv), env);
  const dir = resolve(values["file"] as string);
  const stateDir = resolve(values["state-dir"] as string, "controlplane");
  const logger = createLogger({ level: values["log-level"] as "warn", name: "ambientctl-up" });
  const cp = await ControlPlane.start({
    configDir: dir,
    listen: values["listen"] as { host: string; port: number },
    stateDir,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger,
  });
  try {
    const view = await fetchMeshView(cp.address);
    out(
      `Ambient local mesh from ${dir}\ncontrol plane (Delta ADS + CA): ${cp.address}   state: ${stateDir}\n`,
    );
    out(renderView(view, "all"));
    const problems = cp.problems;
    if (problems.length > 0)
      out(`\n${problems.length} manifest problem(s); see the log above. The valid objects are served.`);
    out(`\nInspect it from another shell:  ambientctl xds workloads --xds-address ${cp.address}`);
    if (values["exit-after-start"]) return 0;
    out("Following edits to the folder. Ctrl-C stops the mesh.");
    await new Promise<void>((done) => {
      process.once("SIGINT", () => done());
      process.once("SIGTERM", () => done());
    });
    return 0;
  } finally {
    await cp.stop();
  }
}
