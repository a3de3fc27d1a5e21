// `ambientctl up [-f DIR] [--demo]`: the local mesh — the control plane on a manifests folder
// (default examples/), one ztunnel per Node, an echo server per Pod — on loopback. It follows edits
// to the folder; Ctrl-C or SIGTERM stops everything it started.

import { resolve } from "node:path";
import { type EnvSource, isLogLevel, type LogLevel, type OptionSpec, parseOptions } from "@ambient/core";
import { runDemo } from "../local/demo.js";
import { LocalMesh } from "../local/mesh.js";
import { renderTable } from "../table.js";
import { normalizeShortFlags } from "./xds.js";

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
  // Access logs are info (and denials warn): quiet by default so the mesh summary stays readable.
  {
    flag: "log-level",
    env: "LOG_LEVEL",
    kind: "string",
    default: "error",
    description: "component log level (JSON on stdout; info shows access logs)",
  },
  {
    flag: "demo",
    kind: "bool",
    default: "false",
    description: "run the guided demo on examples/ once the mesh is up",
  },
  {
    flag: "exit-after-start",
    kind: "bool",
    default: "false",
    description: "print the mesh (and run --demo) then exit",
  },
];

export async function upCommand(argv: string[], env: EnvSource, out: (s: string) => void): Promise<number> {
  const { values } = parseOptions(UP_OPTIONS, normalizeShortFlags(argv), env);
  const logLevel = values["log-level"] as string;
  if (!isLogLevel(logLevel)) throw new Error(`--log-level: "${logLevel}" is not a log level`);
  const dir = resolve(values["file"] as string);
  const mesh = await LocalMesh.start({
    dir,
    listen: values["listen"] as { host: string; port: number },
    stateDir: resolve(values["state-dir"] as string),
    logLevel: logLevel as LogLevel,
  });
  let failed = false;
  try {
    await mesh.settled();
    out(describe(mesh, dir));
    if (values["demo"]) {
      out("\n── demo ──────────────────────────────────────────────────────────────");
      const steps = await runDemo(mesh, out);
      failed = steps.some((s) => !s.ok);
      out(`\n${steps.filter((s) => s.ok).length}/${steps.length} demo steps behaved as expected.`);
    }
    if (values["exit-after-start"]) return failed ? 1 : 0;
    out("\nFollowing edits to the folder. Ctrl-C stops the mesh.");
    await new Promise<void>((done) => {
      process.once("SIGINT", () => done());
      process.once("SIGTERM", () => done());
    });
    return 0;
  } finally {
    await mesh.stop();
  }
}

function describe(mesh: LocalMesh, dir: string): string {
  const { nodes, pods } = mesh.summary();
  const lines: string[] = [];
  lines.push(`Ambient local mesh from ${dir}`);
  lines.push(`control plane (Delta ADS + CA): ${mesh.cp.address}\n`);
  lines.push(
    renderTable(
      ["NODE", "ADDRESS", "ZTUNNEL ADMIN", "METRICS"],
      nodes.map((n) => [n.name, n.ip, `http://${n.ip}:15000/config_dump`, `http://${n.ip}:15020/metrics`]),
    ),
  );
  lines.push("");
  lines.push(
    renderTable(
      ["NAMESPACE", "POD", "NODE", "ADDRESS", "PORTS", "SERVICE ACCOUNT", "MESH"],
      pods.map((p) => [
        p.namespace,
        p.name,
        p.node,
        p.ip,
        p.ports.join(",") || "-",
        p.serviceAccount,
        p.ambient ? "ambient (HBONE)" : "none",
      ]),
    ),
  );
  const services = mesh.cp.snapshot.services;
  // A pod without ports of its own reads as a client (sleep); fall back to any ambient pod.
  const client =
    pods.find((p) => p.ambient && p.name === "sleep") ??
    pods.find((p) => p.ambient && p.ports.length === 0) ??
    pods.find((p) => p.ambient);
  if (client && services.length > 0) {
    lines.push("\nTry (apps in a pod reach the mesh through the pod's SOCKS5 listener, podIP:15080):");
    for (const s of services.slice(0, 3)) {
      const port = s.ports[0]?.servicePort ?? 80;
      lines.push(
        `  curl --socks5-hostname ${client.ip}:15080 http://${s.hostname}${port === 80 ? "" : `:${port}`}/   # as ${client.namespace}/${client.name}`,
      );
    }
    lines.push(`  ambientctl xds workloads --xds-address ${mesh.cp.address}`);
  }
  return lines.join("\n");
}
