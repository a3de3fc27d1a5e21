// Whether a stopping agent leaves the node for good. Istio's CNI agent decides it at SIGTERM from its
// DaemonSet: gone, or being deleted (`helm uninstall`, `kubectl delete daemonset`), means no agent
// will come back on this node, so the plugin leaves the node's CNI config (a plugin whose agent is
// gone fails every pod start); standing means an upgrade or a restarted pod, and the plugin stays so
// pods started meanwhile wait for the next agent instead of starting outside the mesh.

import type { Logger } from "@ambient/core";

export interface Removal {
  removed: boolean;
  why: string;
}

/**
 * Reads DaemonSet `namespace/name` through `kubeconfig` (undefined: in-cluster). 401 and 403 count
 * as gone too: `helm uninstall` deletes the agent's ServiceAccount and role with the DaemonSet, so
 * the agent's own token stops working before its pod is stopped. Any other failure (the API server
 * unreachable) counts as standing: removing the plugin during an upgrade would start pods
 * uncaptured, while a plugin left behind fails closed and is named in the log.
 */
export async function daemonSetRemoval(
  kubeconfig: string | undefined,
  ds: { namespace: string; name: string },
  logger: Logger,
): Promise<Removal> {
  const { apiStatusOf, getJson, loadKubeConfig } = await import("@ambient/kube/api");
  const where = `daemonset ${ds.namespace}/${ds.name}`;
  try {
    const obj = await getJson<{ metadata?: { deletionTimestamp?: string } }>(
      loadKubeConfig(kubeconfig),
      `/apis/apps/v1/namespaces/${ds.namespace}/daemonsets/${ds.name}`,
    );
    if (obj.metadata?.deletionTimestamp) return { removed: true, why: `${where} is being deleted` };
    return { removed: false, why: `${where} still stands (an upgrade or a restart)` };
  } catch (err) {
    const status = apiStatusOf(err);
    if (status === 404) return { removed: true, why: `${where} is gone` };
    if (status === 401 || status === 403)
      return {
        removed: true,
        why: `this agent's account may no longer read ${where} (${status}): its release is gone`,
      };
    logger.warn({ err: (err as Error).message }, `cannot read ${where}; leaving the plugin in place`);
    return { removed: false, why: `${where} could not be read` };
  }
}
