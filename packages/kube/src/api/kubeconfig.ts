// Where a component finds its API server: an explicit kubeconfig file (`--kubeconfig`, KUBECONFIG),
// or, in a pod, the service account's token and CA that Kubernetes mounts.

import { KubeConfig } from "@kubernetes/client-node";

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster())
    throw new Error(
      path
        ? `kubeconfig ${path} names no current cluster`
        : "no Kubernetes API: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
    );
  return kc;
}
