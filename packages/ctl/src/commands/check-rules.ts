// The checks of `ambientctl check`, each a function from what the cluster shows to the problems it
// finds; every problem carries the command that fixes it (or shows why). Read-only: nothing here
// writes to the cluster.

import { type KubeObject, SUPPORTED_KINDS } from "@ambient/kube";

export interface Problem {
  message: string;
  fix: string;
}

export interface Check {
  name: string;
  problems: Problem[];
  /** What was checked when nothing is wrong (or why the check did not apply). */
  ok: string;
}

/** What the checks read, listed once. `undefined`: the kind is not served (its CRD is missing). */
export interface ClusterView {
  crds: string[];
  nodes: KubeObject[];
  meshPods: KubeObject[];
  daemonSets: KubeObject[];
  namespaces: KubeObject[];
  gateways: KubeObject[] | undefined;
  policies: KubeObject[] | undefined;
}

export const MESH_NAMESPACE = "istio-system";
const CHART = `helm upgrade --install ambient deploy/charts/ambient -n ${MESH_NAMESPACE} --reuse-values`;
/**
 * The CRDs the control plane reads (the chart's `base` part installs them): one per API-group kind
 * it supports, and GatewayClass, which every Gateway names (deploy/crds/generate-crds.mjs).
 */
const REQUIRED_CRDS = [
  ...SUPPORTED_KINDS.filter((k) => k.group !== "").map((k) => `${k.plural}.${k.group}`),
  "gatewayclasses.gateway.networking.k8s.io",
];
const ZTUNNEL = { key: "app", value: "ztunnel" };
const CNI = { key: "k8s-app", value: "istio-cni-node" };
const ISTIOD = { key: "app", value: "istiod" };
const USE_WAYPOINT = "istio.io/use-waypoint";
const USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace";

type PodLike = KubeObject & {
  spec?: { nodeName?: string; containers?: { image?: string; env?: { name: string }[] }[] };
  status?: { conditions?: { type: string; status: string }[] };
};
type Conditions = { status?: { conditions?: { type: string; status: string; message?: string }[] } };

const labelled = (pods: KubeObject[], l: { key: string; value: string }) =>
  pods.filter((p) => p.metadata.labels?.[l.key] === l.value) as PodLike[];
const ready = (p: PodLike) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

export function checkCrds(v: ClusterView): Check {
  const missing = REQUIRED_CRDS.filter((c) => !v.crds.includes(c));
  return {
    name: "CRDs",
    ok: `${REQUIRED_CRDS.length} CRDs the control plane reads are present`,
    problems: missing.map((c) => ({
      message: `CRD ${c} is missing`,
      fix: `${CHART} (its base part installs the CRDs)`,
    })),
  };
}

/** One Ready pod of `label` per node; `what` names the component. */
function perNode(v: ClusterView, label: { key: string; value: string }, what: string, ds: string): Problem[] {
  const pods = labelled(v.meshPods, label);
  const problems: Problem[] = [];
  for (const node of v.nodes.map((n) => n.metadata.name)) {
    const on = pods.filter((p) => p.spec?.nodeName === node);
    if (on.length === 0) {
      problems.push({
        message: `node ${node} runs no ${what} pod (${label.key}=${label.value} in ${MESH_NAMESPACE})`,
        fix: `kubectl describe daemonset ${ds} -n ${MESH_NAMESPACE} (does it tolerate the node's taints?)`,
      });
    } else if (!on.some(ready)) {
      const pod = on[0]!.metadata.name;
      problems.push({
        message: `${what} pod ${pod} on node ${node} is not Ready`,
        fix: `kubectl logs -n ${MESH_NAMESPACE} ${pod}; kubectl describe pod -n ${MESH_NAMESPACE} ${pod}`,
      });
    }
  }
  return problems;
}

export function checkZtunnel(v: ClusterView): Check {
  return {
    name: "ztunnel",
    ok: `ztunnel Ready on every node (${v.nodes.length})`,
    problems: perNode(v, ZTUNNEL, "ztunnel", "ztunnel"),
  };
}

/**
 * The CNI agent is needed where ztunnel runs in in-pod mode (INPOD_UDS: it waits for the agent's
 * pods) or its DaemonSet exists; the loopback cluster's ztunnel captures nothing and needs none.
 */
export function checkCni(v: ClusterView): Check {
  const inPod = labelled(v.meshPods, ZTUNNEL).some((p) =>
    p.spec?.containers?.some((c) => c.env?.some((e) => e.name === "INPOD_UDS")),
  );
  const installed = v.daemonSets.some((d) => d.metadata.name === "istio-cni-node");
  if (!inPod && !installed)
    return { name: "CNI", ok: "not used: ztunnel runs without in-pod redirection (INPOD_UDS)", problems: [] };
  return {
    name: "CNI",
    ok: `CNI agent Ready on every node (${v.nodes.length})`,
    problems: perNode(v, CNI, "CNI agent", "istio-cni-node"),
  };
}

export function checkWaypoints(v: ClusterView): Check {
  if (!v.gateways)
    return { name: "waypoints", ok: "skipped: Gateways are not served (see CRDs)", problems: [] };
  const have = new Set(v.gateways.map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
  const problems: Problem[] = [];
  for (const ns of v.namespaces) {
    const name = ns.metadata.labels?.[USE_WAYPOINT];
    // "none" opts a namespace out of a waypoint (Istio's reserved value).
    if (!name || name === "none") continue;
    const gwNs = ns.metadata.labels?.[USE_WAYPOINT_NAMESPACE] || ns.metadata.name;
    if (have.has(`${gwNs}/${name}`)) continue;
    problems.push({
      message: `namespace ${ns.metadata.name} uses waypoint ${gwNs}/${name}, which does not exist (its traffic is refused)`,
      fix: `ambientctl waypoint apply -n ${gwNs} --name ${name} (or kubectl label namespace ${ns.metadata.name} ${USE_WAYPOINT}-)`,
    });
  }
  return { name: "waypoints", ok: "every waypoint a namespace uses exists", problems };
}

export function checkPolicies(v: ClusterView): Check {
  if (!v.policies)
    return { name: "policies", ok: "skipped: AuthorizationPolicies are not served (see CRDs)", problems: [] };
  const problems: Problem[] = [];
  for (const p of v.policies) {
    const refused = (p as Conditions).status?.conditions?.find(
      (c) => c.type.endsWith("Accepted") && c.status === "False",
    );
    if (!refused) continue;
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    problems.push({
      message: `AuthorizationPolicy ${key} is not accepted (${refused.type}): ${refused.message ?? "no message"}`,
      fix: `kubectl describe authorizationpolicy -n ${p.metadata.namespace} ${p.metadata.name}, then correct it with kubectl apply`,
    });
  }
  return { name: "policies", ok: `no AuthorizationPolicy refused (${v.policies.length})`, problems };
}

/** The image tag (after the last ':' of the last path part), or "latest" as the runtime would pull. */
function tagOf(image: string): string {
  const last = image.slice(image.lastIndexOf("/") + 1).replace(/@.*$/, "");
  const i = last.indexOf(":");
  return i < 0 ? "latest" : last.slice(i + 1);
}

export function checkVersions(v: ClusterView): Check {
  const tags = new Map<string, Set<string>>();
  for (const [what, label] of [
    ["istiod", ISTIOD],
    ["ztunnel", ZTUNNEL],
    ["istio-cni", CNI],
  ] as const) {
    for (const p of labelled(v.meshPods, label)) {
      for (const c of p.spec?.containers ?? []) {
        if (!c.image) continue;
        const set = tags.get(what) ?? new Set<string>();
        set.add(tagOf(c.image));
        tags.set(what, set);
      }
    }
  }
  const all = new Set([...tags.values()].flatMap((s) => [...s]));
  const summary = [...tags].map(([what, s]) => `${what} ${[...s].join(",")}`).join(", ");
  if (all.size <= 1)
    return { name: "versions", ok: `one version: ${summary || "no components found"}`, problems: [] };
  const cp = [...(tags.get("istiod") ?? [])][0];
  return {
    name: "versions",
    ok: "",
    problems: [
      {
        message: `components run different versions: ${summary}`,
        fix: cp
          ? `${CHART} --set global.tag=${cp} (the data plane at the control plane's version)`
          : `${CHART} --set global.tag=<release>`,
      },
    ],
  };
}
