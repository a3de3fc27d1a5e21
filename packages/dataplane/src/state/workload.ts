// Facts derived from one Workload or Service, shared by the indexes, the load balancer and the
// proxy: a workload's SPIFFE identity, its addresses as text, and which port a service port
// reaches on it.

import { type Service, SpiffeId, type Workload } from "@ambient/core";

// Istio's defaults when the control plane leaves these out (ztunnel's Workload conversion).
export const DEFAULT_TRUST_DOMAIN = "cluster.local";
export const DEFAULT_SERVICE_ACCOUNT = "default";

/** A workload reached through a service port: the workload and the port to dial on it. */
export interface Endpoint {
  workload: Workload;
  targetPort: number;
}

/** `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`. Throws IDENTITY_MALFORMED for names xDS validation refuses. */
export function workloadIdentity(workload: Workload): SpiffeId {
  return SpiffeId.of({
    trustDomain: workload.trustDomain || DEFAULT_TRUST_DOMAIN,
    namespace: workload.namespace,
    serviceAccount: workload.serviceAccount || DEFAULT_SERVICE_ACCOUNT,
  });
}

/** The key a workload's `services` map uses for a service: `<ns>/<hostname>`. */
export function serviceKey(service: Pick<Service, "namespace" | "hostname">): string {
  return `${service.namespace}/${service.hostname}`;
}

/**
 * The port `servicePort` of `service` reaches on `workload`, or undefined when the workload does
 * not serve it. As ztunnel: the workload's own mapping for the service wins (it resolved named
 * target ports against the pod's containers), then the service's numeric target port; a named
 * target (sent as 0) without a per-workload mapping means the pod lacks that port.
 */
export function targetPortFor(service: Service, servicePort: number, workload: Workload): number | undefined {
  const port = service.ports.find((p) => p.servicePort === servicePort);
  if (!port) return undefined;
  const mapped = workload.services[serviceKey(service)]?.ports.find((p) => p.servicePort === servicePort);
  if (mapped && mapped.targetPort > 0) return mapped.targetPort;
  return port.targetPort > 0 ? port.targetPort : undefined;
}
