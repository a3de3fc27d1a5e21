// Whether a pod is in the ambient mesh, by Istio's labels: the pod's own
// `istio.io/dataplane-mode` wins, then its namespace's. Only enrolled pods are reached over HBONE;
// the others still get a Workload (tunnel NONE) so that ztunnel can reach them in plaintext.

import type { Namespace, Pod } from "./model/index.js";

const DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode";
/** Set by sidecar injection; a pod with a sidecar is served by it, never by ztunnel. */
const SIDECAR_STATUS_ANNOTATION = "sidecar.istio.io/status";

export function isAmbientEnrolled(pod: Pod, namespace: Namespace | undefined): boolean {
  // A host-network pod shares the node's network namespace: there is nothing to redirect.
  if (pod.spec?.hostNetwork === true) return false;
  if (pod.metadata.annotations?.[SIDECAR_STATUS_ANNOTATION] !== undefined) return false;
  const podMode = pod.metadata.labels?.[DATAPLANE_MODE_LABEL];
  if (podMode === "ambient") return true;
  if (podMode === "none") return false;
  return namespace?.metadata.labels?.[DATAPLANE_MODE_LABEL] === "ambient";
}
