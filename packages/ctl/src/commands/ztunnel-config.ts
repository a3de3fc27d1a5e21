// `ambientctl ztunnel-config [workloads|services|policies|certificates|connections|all]`: what one ztunnel
// holds, its admin /config_dump (port 15000). On a cluster (--node, --kubeconfig/--context, or a
// kubeconfig found as kubectl finds it) the node's ztunnel pod is found through the API and read
// through the pod proxy, as istioctl reaches it by port-forward; --node-ip reads a local ztunnel.

import { type EnvSource, type OptionSpec, parseOptions } from "@ambient/core";
import type { Pod } from "@ambient/kube";
import { getJson, type KubeConfig, loadUserKubeConfig } from "@ambient/kube/api";
import { stringify } from "yaml";
import { normalizeShortFlags } from "./xds.js";
import { type ConfigDump, renderSections, SECTIONS, type Section } from "./ztunnel-config-tables.js";

export const ZTUNNEL_CONFIG_OPTIONS: readonly OptionSpec[] = [
  { flag: "node-ip", env: "NODE_IP", kind: "string", description: "a local ztunnel's admin address" },
  { flag: "admin-port", kind: "int", default: "15000", description: "admin port" },
  { flag: "node", kind: "string", description: "the cluster node whose ztunnel to read" },
  { flag: "kubeconfig", kind: "string", description: "kubeconfig file (else $KUBECONFIG, ~/.kube/config)" },
  { flag: "context", kind: "string", description: "kubeconfig context to use" },
  { flag: "output", kind: "string", default: "table", description: "table|json|yaml" },
];

const OUTPUTS = ["table", "json", "yaml"];
// The chart installs ztunnel in istio-system with label app=ztunnel (istioctl looks for the same).
const ZTUNNEL_NAMESPACE = "istio-system";
const ZTUNNEL_SELECTOR = "app=ztunnel";
const LOCAL_ADMIN_IP = "127.0.0.1";

export async function ztunnelConfigCommand(
  argv: string[],
  env: EnvSource,
  out: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parseOptions(ZTUNNEL_CONFIG_OPTIONS, normalizeShortFlags(argv), env);
  const section = (positionals[0] ?? "all") as Section;
  if (!SECTIONS.includes(section))
    throw new Error(`unknown section "${section}": use ${SECTIONS.join(", ")}`);
  const output = values["output"] as string;
  if (!OUTPUTS.includes(output)) throw new Error(`unknown output "${output}": use ${OUTPUTS.join(", ")}`);
  const port = values["admin-port"] as number;
  const kc = clusterOf(values, env);
  const dump = kc
    ? await clusterDump(kc, values["node"] as string | undefined, port)
    : await localDump(`http://${(values["node-ip"] as string | undefined) ?? LOCAL_ADMIN_IP}:${port}`);
  const view = section === "all" ? dump : dump[section];
  if (output === "json") out(JSON.stringify(view, null, 2));
  else if (output === "yaml") out(stringify(view).trimEnd());
  else out(renderSections(dump, section));
  return 0;
}

/**
 * The cluster to read from: none with --node-ip (a local ztunnel); required with --node,
 * --kubeconfig or --context; otherwise the kubeconfig kubectl would use, when there is one.
 */
function clusterOf(values: Record<string, unknown>, env: EnvSource): KubeConfig | undefined {
  const kubeconfig = values["kubeconfig"] as string | undefined;
  const context = values["context"] as string | undefined;
  const asked = values["node"] !== undefined || kubeconfig !== undefined || context !== undefined;
  if (values["node-ip"] !== undefined) {
    if (asked)
      throw new Error(
        "--node-ip reads a local ztunnel: it cannot be combined with --node, --kubeconfig or --context",
      );
    return undefined;
  }
  try {
    return loadUserKubeConfig({ kubeconfig, context, env }).kc;
  } catch (err) {
    if (asked) throw err;
    return undefined;
  }
}

async function localDump(base: string): Promise<ConfigDump> {
  const url = `${base}/config_dump`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as ConfigDump;
  } catch (err) {
    throw new Error(`cannot read ${url}: ${(err as Error).message}`, { cause: err });
  }
}

async function clusterDump(kc: KubeConfig, node: string | undefined, port: number): Promise<ConfigDump> {
  const server = kc.getCurrentCluster()?.server ?? "the cluster";
  const list = await getJson<{ items: Pod[] }>(kc, `/api/v1/namespaces/${ZTUNNEL_NAMESPACE}/pods`, {
    labelSelector: ZTUNNEL_SELECTOR,
    ...(node ? { fieldSelector: `spec.nodeName=${node}` } : {}),
  });
  const pods = list.items
    .filter((p) => p.status?.phase === "Running")
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const pod = pods[0];
  if (!pod) {
    const where = node ? `on node ${node}` : "on any node";
    throw new Error(
      `no running ztunnel pod (${ZTUNNEL_SELECTOR} in ${ZTUNNEL_NAMESPACE}) ${where} of ${server}: ` +
        `check with kubectl get pods -n ${ZTUNNEL_NAMESPACE} -l ${ZTUNNEL_SELECTOR} -o wide`,
    );
  }
  const path = `/api/v1/namespaces/${ZTUNNEL_NAMESPACE}/pods/${pod.metadata.name}:${port}/proxy/config_dump`;
  try {
    return await getJson<ConfigDump>(kc, path);
  } catch (err) {
    throw new Error(
      `cannot read the config dump of pod ${ZTUNNEL_NAMESPACE}/${pod.metadata.name} (node ${pod.spec?.nodeName}) through ${server}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
