import type { kube } from "@ambient/testbed";

// TEMPORARY until the harness's controllers land: the pods the DaemonSet and Deployment controllers
// would create (one per node; `replicas` on the first node), owned by their workload.
export async function runWorkloads(cluster: kube.KubeCluster, NS: string): Promise<void> {
  type W = {
    metadata: { name: string; uid: string };
    spec: {
      replicas?: number;
      template: { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    };
  };
  for (const [kind, plural] of [
    ["DaemonSet", "daemonsets"],
    ["Deployment", "deployments"],
  ] as const) {
    const list = await cluster.client.request<{ items: W[] }>(
      "GET",
      `/apis/apps/v1/namespaces/${NS}/${plural}`,
    );
    for (const w of list.items) {
      const nodes = kind === "DaemonSet" ? cluster.nodes : cluster.nodes.slice(0, w.spec.replicas ?? 1);
      for (const n of nodes) {
        await cluster.apply([
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: {
              ...w.spec.template.metadata,
              name: `${w.metadata.name}-${n.name}`,
              namespace: NS,
              ownerReferences: [
                { apiVersion: "apps/v1", kind, name: w.metadata.name, uid: w.metadata.uid, controller: true },
              ],
            },
            spec: { ...w.spec.template.spec, nodeName: n.name },
          },
        ]);
      }
    }
  }
}
