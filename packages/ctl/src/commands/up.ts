// `ambientctl up [-f DIR] [--demo]`: the local mesh — the control plane on a manifests folder
// (default examples/), one ztunnel per Node, an echo server per Pod — on loopback. It follows edits
// to the folder; Ctrl-C or SIGTERM stops everything it started.
// `ambientctl up --netns [-f DIR]` (root): the same folder on network namespaces, with transparent
// capture — nodes and pods are netns, pods are wired by the CNI plugins with ambient-cni chained,
// and node agents and ztunnels run in the node netns (netns/mesh.ts).
// `ambientctl up --kube [--netns] [-f DIR]`: the same components in Kubernetes mode against a test
// API server, driven with the real kubectl (up-kube.ts).

import { resolve } from "node:path";
import {
  createLogger,
  type EnvSource,
  isLogLevel,
  type LogLevel,
  type OptionSpec,
  parseOptions,
} from "@ambient/core";
import { LocalMesh, NetnsMesh, netns } from "@ambient/testbed";
import { runDemo } from "../local/demo.js";
import { renderTable } from "../table.js";
import { requireNetnsTools } from "./netns-tools.js";
import { upKube } from "./up-kube.js";
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
    flag: "netns",
    kind: "bool",
    default: "false",
    description: "run nodes and pods as network namespaces with transparent capture (CNI); root only",
  },
  {
    flag: "dns-proxy",
    kind: "bool",
    default: "false",
    description:
      "ztunnel's DNS proxy on every pod's 15053 (with --netns also the pods' port-53 capture and a resolv.conf)",
  },
  {
    flag: "netns-prefix",
    kind: "string",
    default: netns.DEFAULT_PREFIX,
    description: "--netns: prefix of every netns made (pods are <prefix><namespace>-<pod>)",
  },
  {
    flag: "kube",
    kind: "bool",
    default: "false",
    description:
      "a Kubernetes cluster on this machine: the test API server, the mesh as pods, a kubelet per node",
  },
  {
    flag: "no-mesh",
    kind: "bool",
    default: "false",
    description:
      "--kube: the API server, the nodes and the folder's apps but no mesh component; install it with helm (printed)",
  },
  {
    flag: "nodes",
    kind: "string",
    description: "--kube: comma-separated node names (default: those the folder names)",
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
  if (values["kube"] && values["dns-proxy"])
    throw new Error(
      "--dns-proxy applies to the loopback and --netns meshes; with --kube, install with --set cni.ambient.dnsCapture=true --set-string ztunnel.env.ISTIO_META_DNS_CAPTURE=true",
    );
  if (values["kube"]) {
    if (values["demo"])
      throw new Error(
        "--demo runs on the loopback mesh of a folder; with --kube, try the printed kubectl commands",
      );
    const nodes = (values["nodes"] as string | undefined)
      ?.split(",")
      .map((n) => n.trim())
      .filter(Boolean);
    return upKube({
      dir,
      stateDir: values["state-dir"] as string,
      netns: values["netns"] ? { prefix: values["netns-prefix"] as string } : undefined,
      nodes: nodes?.length ? nodes : undefined,
      mesh: !values["no-mesh"],
      logLevel: logLevel as LogLevel,
      exitAfterStart: values["exit-after-start"] as boolean,
      out,
    });
  }
  if (values["nodes"]) throw new Error("--nodes applies to --kube only");
  const dnsProxy = values["dns-proxy"] as boolean;
  if (values["no-mesh"])
    throw new Error("--no-mesh applies to --kube only (a cluster to install the Helm chart into)");
  if (values["netns"]) {
    if (values["demo"])
      throw new Error("--demo runs on the loopback mesh; with --netns, try the printed commands");
    return upNetns(dir, {
      prefix: values["netns-prefix"] as string,
      dnsProxy,
      logLevel: logLevel as LogLevel,
      exitAfterStart: values["exit-after-start"] as boolean,
      out,
    });
  }
  const mesh = await LocalMesh.start({
    dir,
    listen: values["listen"] as { host: string; port: number },
    stateDir: resolve(values["state-dir"] as string),
    logLevel: logLevel as LogLevel,
    ...(dnsProxy && { ztunnelArgs: () => ["--dns-proxy"] }),
  });
  let failed = false;
  try {
    await mesh.settled();
    out(describe(mesh, dir));
    if (values["demo"]) {
      out("\n── demo ──────────────────────────────────────────────────────────────");
      const steps = await runDemo(mesh, out, dir);
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

interface UpNetnsOptions {
  prefix: string;
  dnsProxy: boolean;
  logLevel: LogLevel;
  exitAfterStart: boolean;
  out: (s: string) => void;
}

async function upNetns(
  dir: string,
  { prefix, dnsProxy, logLevel, exitAfterStart, out }: UpNetnsOptions,
): Promise<number> {
  requireNetnsTools();
  // The mesh's own progress and warnings (skipped pods, pods that did not start) go to stderr.
  const logger = createLogger({
    level: logLevel === "error" ? "warn" : logLevel,
    name: "ambientctl",
    destination: process.stderr,
  });
  out(`Starting the mesh from ${dir} on network namespaces (prefix ${prefix}) ...`);
  const mesh = await NetnsMesh.start({ dir, prefix, logLevel, logger, ...(dnsProxy && { dnsProxy: {} }) });
  try {
    await mesh.settled();
    out(describeNetns(mesh, dir));
    if (exitAfterStart) return 0;
    out("\nFollowing edits to the folder. Ctrl-C stops the mesh and removes every namespace it made.");
    await new Promise<void>((done) => {
      process.once("SIGINT", () => done());
      process.once("SIGTERM", () => done());
    });
    return 0;
  } finally {
    await mesh.stop();
  }
}

function describeNetns(mesh: NetnsMesh, dir: string): string {
  const { nodes, pods, services } = mesh.summary();
  const lines: string[] = [];
  lines.push(`Ambient mesh on network namespaces from ${dir}`);
  lines.push(`control plane (Delta ADS + CA): ${mesh.controlPlaneAddress} in netns ${nodes[0]?.netns}`);
  lines.push(`state and logs: ${mesh.stateDir}\n`);
  lines.push(
    renderTable(
      ["NODE", "NETNS", "ADDRESS", "POD CIDR", "ZTUNNEL METRICS"],
      nodes.map((n) => [
        n.name,
        n.netns,
        n.ip,
        n.podCidr,
        `ip netns exec ${n.netns} curl http://${n.ip}:15020/metrics`,
      ]),
    ),
  );
  lines.push("");
  lines.push(
    renderTable(
      ["NAMESPACE", "POD", "NODE", "NETNS", "ADDRESS", "PORTS", "CAPTURE"],
      pods.map((p) => [
        p.namespace,
        p.name,
        p.node,
        p.netns,
        p.ip,
        p.ports.join(",") || "-",
        p.waypoint ? "waypoint" : p.redirection === "enabled" ? "ambient (redirected)" : "none",
      ]),
    ),
  );
  const client = pickClient(pods, (p) => p.redirection === "enabled");
  if (client && services.length > 0) {
    lines.push(
      `\nTry (an unmodified curl in ${client.namespace}/${client.name}; its traffic is captured by ztunnel):`,
    );
    for (const s of services.slice(0, 3))
      lines.push(`  ip netns exec ${client.netns} curl http://${s.names[0]}/`);
  }
  const outsider = pods.find((p) => p.redirection !== "enabled" && !p.waypoint);
  if (outsider && services.length > 0)
    lines.push(
      `  ip netns exec ${outsider.netns} curl http://${services[0]!.names[0]}/   # from outside the mesh`,
    );
  lines.push(
    `  ip netns exec ${nodes[0]?.netns} tcpdump -i eth0 -n -A   # the node link: only TLS to 15008 (and xDS)`,
  );
  return lines.join("\n");
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
        p.proxy?.kind === "ingress-gateway"
          ? "ingress gateway"
          : p.proxy?.kind === "waypoint"
            ? "waypoint"
            : p.ambient
              ? "ambient (HBONE)"
              : "none",
      ]),
    ),
  );
  // Where traffic from outside enters: each ingress gateway's address and the ports it listens on.
  for (const p of pods) {
    if (p.proxy?.kind !== "ingress-gateway") continue;
    const ports = p.proxy.listening.join(", ") || "none yet (no Gateway selects it)";
    lines.push(`
ingress gateway ${p.namespace}/${p.name}: ${p.ip}, ports ${ports}`);
  }
  const services = mesh.cp.snapshot.services;
  const client = pickClient(pods, (p) => p.ambient);
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

/** The pod the printed examples run from: sleep, else a mesh pod without ports (a client), else any. */
function pickClient<P extends { name: string; ports: readonly number[] }>(
  pods: readonly P[],
  inMesh: (p: P) => boolean,
): P | undefined {
  const mesh = pods.filter(inMesh);
  return mesh.find((p) => p.name === "sleep") ?? mesh.find((p) => p.ports.length === 0) ?? mesh[0];
}
