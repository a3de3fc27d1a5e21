// `ambientctl check`: is this cluster's mesh healthy? CRDs present, ztunnel (and the CNI agent where
// used) Ready on every node, every waypoint a namespace uses exists, no policy refused, one version
// across components. Prints each check; each problem with the command that fixes it; exit 1 on any.

import { type EnvSource, type OptionSpec, parseOptions } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { apiStatusOf, getJson, type KubeConfig, loadUserKubeConfig } from "@ambient/kube/api";
import {
  type Check,
  type ClusterView,
  checkCni,
  checkCrds,
  checkPolicies,
  checkVersions,
  checkWaypoints,
  checkZtunnel,
  MESH_NAMESPACE,
} from "./check-rules.js";

const OPTIONS: readonly OptionSpec[] = [
  { flag: "kubeconfig", kind: "string", description: "kubeconfig file (else $KUBECONFIG, ~/.kube/config)" },
  { flag: "context", kind: "string", description: "kubeconfig context to use" },
];

export async function checkCommand(
  argv: string[],
  env: EnvSource,
  out: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parseOptions(OPTIONS, argv, env);
  if (positionals.length > 0)
    throw new Error(`unexpected argument "${positionals[0]}" (check takes flags only)`);
  const { kc } = loadUserKubeConfig({
    kubeconfig: values["kubeconfig"] as string | undefined,
    context: values["context"] as string | undefined,
    env,
  });
  const view = await readCluster(kc);
  const checks: Check[] = [
    checkCrds,
    checkZtunnel,
    checkCni,
    checkWaypoints,
    checkPolicies,
    checkVersions,
  ].map((c) => c(view));
  let problems = 0;
  for (const c of checks) {
    if (c.problems.length === 0) {
      out(`ok       ${c.name}: ${c.ok}`);
      continue;
    }
    for (const p of c.problems) {
      problems++;
      out(`problem  ${c.name}: ${p.message}\n         fix: ${p.fix}`);
    }
  }
  out(problems === 0 ? "No problems found." : `${problems} problem${problems === 1 ? "" : "s"} found.`);
  return problems === 0 ? 0 : 1;
}

async function items(kc: KubeConfig, path: string): Promise<KubeObject[]> {
  return (await getJson<{ items: KubeObject[] }>(kc, path)).items;
}

/** A custom kind's list, or undefined when the API does not serve it (404: its CRD is missing). */
async function optional(kc: KubeConfig, path: string): Promise<KubeObject[] | undefined> {
  try {
    return await items(kc, path);
  } catch (err) {
    if (apiStatusOf(err) === 404) return undefined;
    throw err;
  }
}

async function readCluster(kc: KubeConfig): Promise<ClusterView> {
  const [crds, nodes, meshPods, daemonSets, namespaces, gateways, policies] = await Promise.all([
    items(kc, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
    items(kc, "/api/v1/nodes"),
    items(kc, `/api/v1/namespaces/${MESH_NAMESPACE}/pods`),
    items(kc, `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/daemonsets`),
    items(kc, "/api/v1/namespaces"),
    optional(kc, "/apis/gateway.networking.k8s.io/v1/gateways"),
    optional(kc, "/apis/security.istio.io/v1/authorizationpolicies"),
  ]);
  return {
    crds: crds.map((c) => c.metadata.name),
    nodes,
    meshPods,
    daemonSets,
    namespaces,
    gateways,
    policies,
  };
}
