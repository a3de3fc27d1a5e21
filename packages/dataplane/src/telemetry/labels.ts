// Istio's identity labels for a connection, filled from what the proxy knows about each end:
// the workload (name, namespace, canonical service/revision, cluster) and its SPIFFE principal.

import type { Service, Workload } from "@ambient/core";
import { emptyLabels, type Reporter, type TcpLabels, UNKNOWN } from "./metrics.js";

export function principalOf(w: Workload): string {
  return `spiffe://${w.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`;
}

export interface LabelInput {
  reporter: Reporter;
  source?: Workload | undefined;
  /** The verified peer identity (inbound) when the source workload is not known by IP. */
  sourcePrincipal?: string | undefined;
  destination?: Workload | undefined;
  destinationPrincipal?: string | undefined;
  service?: Service | undefined;
  mtls: boolean;
}

export function connectionLabels(input: LabelInput): TcpLabels {
  const l = emptyLabels(input.reporter);
  const s = input.source;
  if (s) {
    l.source_workload = s.workloadName || s.name;
    l.source_workload_namespace = s.namespace;
    l.source_app = s.canonicalName || UNKNOWN;
    l.source_version = s.canonicalRevision || UNKNOWN;
    l.source_canonical_service = s.canonicalName || UNKNOWN;
    l.source_canonical_revision = s.canonicalRevision || UNKNOWN;
    l.source_cluster = s.clusterId || UNKNOWN;
  }
  l.source_principal = input.sourcePrincipal ?? (s && input.mtls ? principalOf(s) : UNKNOWN);
  const d = input.destination;
  if (d) {
    l.destination_workload = d.workloadName || d.name;
    l.destination_workload_namespace = d.namespace;
    l.destination_app = d.canonicalName || UNKNOWN;
    l.destination_version = d.canonicalRevision || UNKNOWN;
    l.destination_canonical_service = d.canonicalName || UNKNOWN;
    l.destination_canonical_revision = d.canonicalRevision || UNKNOWN;
    l.destination_cluster = d.clusterId || UNKNOWN;
  }
  l.destination_principal = input.destinationPrincipal ?? (d && input.mtls ? principalOf(d) : UNKNOWN);
  if (input.service) {
    l.destination_service = input.service.hostname;
    l.destination_service_namespace = input.service.namespace;
    l.destination_service_name = input.service.name;
  } else if (d) {
    // Istio reports the workload when there is no service in the path.
    l.destination_service = d.name;
    l.destination_service_namespace = d.namespace;
    l.destination_service_name = d.name;
  }
  l.connection_security_policy = input.mtls ? "mutual_tls" : "none";
  return l;
}
