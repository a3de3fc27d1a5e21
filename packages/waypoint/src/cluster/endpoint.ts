// The endpoints of one cluster as the load balancer and outlier detector see them, and Istio's
// subset selection over them. Pod labels are not in the xDS Workload, so the proxy engine builds
// these from the workload and the labels the control plane hands it.

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface EndpointInfo {
  /** The workload UID; the key for outlier state and active-request counts. */
  uid: string;
  address: string;
  /** The target port on the endpoint (the service port's targetPort). */
  port: number;
  /** Pod labels: DestinationRule subsets select on these. */
  labels: Record<string, string>;
  /**
   * Ready per Kubernetes. Istio leaves unready pods out of EDS, so an unhealthy endpoint is never
   * picked, not even when the load balancer panics (Istio disables panic mode for services that do
   * publish unready endpoints).
   */
  healthy: boolean;
  locality?: Locality;
}

/** True when every subset label is on the endpoint with the same value (an empty subset selects all). */
export function matchesSubset(
  endpoint: EndpointInfo,
  subsetLabels: Record<string, string> | undefined,
): boolean {
  if (!subsetLabels) return true;
  for (const [key, value] of Object.entries(subsetLabels)) {
    if (endpoint.labels[key] !== value) return false;
  }
  return true;
}

/** The service's endpoints that belong to a subset. */
export function selectSubset(
  endpoints: readonly EndpointInfo[],
  subsetLabels: Record<string, string> | undefined,
): EndpointInfo[] {
  return subsetLabels ? endpoints.filter((e) => matchesSubset(e, subsetLabels)) : [...endpoints];
}
