// The cluster stage's failures, each carrying the HTTP status and the Envoy response flag that
// access logs and metrics report, so the engine's single error-mapping place can read them from
// `details` instead of knowing about circuit breakers or subsets.

import { AmbientError } from "@ambient/core";

export const ClusterErrorCode = {
  /** A circuit breaker refused the request (Envoy `UO`). */
  OVERFLOW: "AMB_UPSTREAM_OVERFLOW",
  /** No endpoint left after health, ejection and panic rules (Envoy `UH`). */
  NO_HEALTHY_UPSTREAM: "AMB_NO_HEALTHY_UPSTREAM",
  /** The route names a subset no DestinationRule defines (Envoy `NC`: the cluster does not exist). */
  CLUSTER_NOT_FOUND: "AMB_CLUSTER_NOT_FOUND",
  /** Neither a service nor a workload answers to the destination (Envoy `NR`). */
  UNKNOWN_DESTINATION: "AMB_UNKNOWN_DESTINATION",
} as const;

export type ResponseFlag = "UO" | "UH" | "NC" | "NR";

export interface ClusterErrorDetails extends Record<string, unknown> {
  status: number;
  responseFlag: ResponseFlag;
  cluster: string;
}

/** 503 UO. Envoy's local reply text for a pool overflow. */
export function upstreamOverflow(cluster: string, resource: string): AmbientError {
  return new AmbientError(
    ClusterErrorCode.OVERFLOW,
    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    { details: { status: 503, responseFlag: "UO", cluster, resource } satisfies ClusterErrorDetails },
  );
}

/** 503 UH, with Envoy's body text. */
export function noHealthyUpstream(cluster: string): AmbientError {
  return new AmbientError(ClusterErrorCode.NO_HEALTHY_UPSTREAM, "no healthy upstream", {
    details: { status: 503, responseFlag: "UH", cluster } satisfies ClusterErrorDetails,
  });
}

/** 503 NC: Envoy answers a route to a missing cluster with an empty 503. */
export function clusterNotFound(cluster: string): AmbientError {
  return new AmbientError(ClusterErrorCode.CLUSTER_NOT_FOUND, `cluster ${cluster} not found`, {
    details: { status: 503, responseFlag: "NC", cluster } satisfies ClusterErrorDetails,
  });
}

/** 503 NR: the request names a host the waypoint knows no service or workload for. */
export function unknownDestination(host: string): AmbientError {
  return new AmbientError(ClusterErrorCode.UNKNOWN_DESTINATION, `no route to ${host}`, {
    details: { status: 503, responseFlag: "NR", cluster: "", host } satisfies ClusterErrorDetails,
  });
}
