// `ambientctl up --kube [--netns] [--no-mesh] [-f DIR]`: a Kubernetes cluster on this machine — the
// test API server with DIR's objects applied, the mesh's components as pods in istio-system (none
// with --no-mesh: the Helm chart installs them), and a kubelet stand-in per node — then prints
// `export KUBECONFIG=...` and what to try with the real kubectl (and helm).
// Keeps running until Ctrl-C or SIGTERM, then removes everything it started.

import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger, type LogLevel } from "@ambient/core";
import { kube } from "@ambient/testbed";
import { renderTable } from "../table.js";
import { requireNetnsTools } from "./netns-tools.js";

export interface UpKubeOptions {
  dir: string | undefined;
  stateDir: string;
  netns: { prefix: string } | undefined;
  nodes: string[] | undefined;
  /** False (--no-mesh): no mesh component; `helm install` of deploy/charts/ambient brings it. */
  mesh: boolean;
  logLevel: LogLevel;
  exitAfterStart: boolean;
  out: (s: string) => void;
}

interface PodRow {
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: { nodeName?: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

export async function upKube(o: UpKubeOptions): Promise<number> {
  if (o.netns) requireNetnsTools();
  // The cluster's own progress and warnings go to stderr; stdout is the summary.
  const logger = createLogger({
    level: o.logLevel === "error" ? "warn" : o.logLevel,
    name: "ambientctl",
    destination: process.stderr,
  });
  const stateDir = resolve(o.stateDir);
  o.out(
    `Starting a Kubernetes cluster${o.dir ? ` from ${o.dir}` : ""} ${o.netns ? `on network namespaces (prefix ${o.netns.prefix})` : "on loopback"} ...`,
  );
  const cluster = await kube.KubeCluster.start({
    stateDir,
    ...(o.dir ? { dir: o.dir } : {}),
    ...(o.nodes ? { nodes: o.nodes } : {}),
    ...(o.netns ? { netns: o.netns } : {}),
    mesh: o.mesh,
    logLevel: o.logLevel,
    logger,
  });
  try {
    await cluster.podsReady();
    o.out(await describe(cluster, !!o.netns));
    if (!o.mesh) o.out(helmNextSteps());
    if (o.exitAfterStart) return 0;
    o.out(
      `\n${o.mesh ? "The mesh follows the API." : "No mesh runs until the chart is installed."} Ctrl-C stops the cluster and removes everything it started.`,
    );
    await new Promise<void>((done) => {
      process.once("SIGINT", () => done());
      process.once("SIGTERM", () => done());
    });
    return 0;
  } finally {
    await cluster.stop();
  }
}

async function describe(cluster: kube.KubeCluster, netns: boolean): Promise<string> {
  const pods = (await cluster.client.request<{ items: PodRow[] }>("GET", "/api/v1/pods")).items;
  const lines = [
    `Kubernetes API: ${cluster.api.url}   state and logs: ${cluster.stateDir}`,
    "",
    `export KUBECONFIG=${cluster.kubeconfigPath}`,
    "",
    renderTable(
      ["NODE", "INTERNAL IP", ...(netns ? ["NETNS"] : [])],
      cluster.nodes.map((n) => [n.name, n.ip, ...(netns ? [cluster.topology!.node(n.name).netns] : [])]),
    ),
    "",
    renderTable(
      ["NAMESPACE", "POD", "NODE", "IP", "READY", ...(netns ? ["REDIRECTION"] : [])],
      pods
        .sort((a, b) =>
          `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
            `${b.metadata.namespace}/${b.metadata.name}`,
          ),
        )
        .map((p) => [
          p.metadata.namespace,
          p.metadata.name,
          p.spec.nodeName ?? "-",
          p.status?.podIP ?? "-",
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? "True" : "False",
          ...(netns ? [p.metadata.annotations?.["ambient.istio.io/redirection"] ?? "-"] : []),
        ]),
    ),
    "",
    "Try (the real kubectl; the mesh follows within seconds):",
    "  kubectl get pods -A -o wide",
    "  kubectl label namespace <ns> istio.io/dataplane-mode=ambient      # enrol its pods; --overwrite / '-' to change or remove",
    "  kubectl apply -f <AuthorizationPolicy, PeerAuthentication, VirtualService, DestinationRule, ServiceEntry, Pod>.yaml",
    "  kubectl create token ztunnel -n istio-system --audience istio-ca",
  ];
  const app = pods.find((p) => p.metadata.namespace !== "istio-system" && p.status?.podIP);
  if (netns && app) {
    const ns = `${cluster.topology!.prefix}${app.metadata.namespace}-${app.metadata.name}`;
    lines.push(
      `  ip netns exec ${ns} curl http://<service>.<namespace>.svc.cluster.local/   # from ${app.metadata.namespace}/${app.metadata.name}`,
    );
    lines.push(
      `  ip netns exec ${cluster.topology!.nodes[0]!.netns} tcpdump -i eth0 -n   # the node link: HBONE (15008) between nodes`,
    );
  } else if (app) {
    lines.push(
      `  curl --socks5-hostname ${app.status!.podIP}:15080 http://<service>.<namespace>.svc.cluster.local/   # as ${app.metadata.namespace}/${app.metadata.name}, once enrolled`,
    );
  }
  lines.push(`  logs of every pod: ${join(cluster.stateDir, "nodes", "<node>", "kubelet", "logs")}`);
  return lines.join("\n");
}

/** The chart in this checkout (from src/commands and dist/commands alike). */
const CHART_DIR = fileURLToPath(new URL("../../../../deploy/charts/ambient", import.meta.url));

/** --no-mesh: what installs the mesh into this cluster, upgrades and removes it (README "Install with Helm"). */
function helmNextSteps(): string {
  const rel = relative(process.cwd(), CHART_DIR);
  const chart = rel && !rel.startsWith("..") ? rel : CHART_DIR;
  return [
    "",
    "No mesh component runs (--no-mesh). Install the mesh with the real helm (KUBECONFIG as above):",
    `  helm install ambient ${chart} -n istio-system --create-namespace --wait`,
    "  kubectl rollout status daemonset/ztunnel -n istio-system",
    "  kubectl label namespace <ns> istio.io/dataplane-mode=ambient      # then enrol a namespace",
    "Upgrade (rolls the DaemonSets node by node) and remove it (each node's CNI config is restored):",
    `  helm upgrade ambient ${chart} -n istio-system --reuse-values --set global.tag=<new tag> --wait`,
    "  helm uninstall ambient -n istio-system --wait",
  ].join("\n");
}
