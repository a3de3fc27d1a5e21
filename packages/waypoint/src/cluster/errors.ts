// The cluster stage's failures, typed with the codes of core's catalogue; core's classifier gives
// each its status, response flag and local reply (UO, UH, NC, NR), so nothing here knows them.

import { AmbientError, ClusterErrorCode, INVALID_BACKEND_HOST_SUFFIX } from "@ambient/core";

/** A circuit breaker (connectionPool limit) refused the request. Envoy's local reply text. */
export function upstreamOverflow(cluster: string, resource: string): AmbientError {
  return new AmbientError(
    ClusterErrorCode.OVERFLOW,
    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    { details: { cluster, resource } },
  );
}

/** No endpoint left after health, ejection and panic rules. */
export function noHealthyUpstream(cluster: string): AmbientError {
  return new AmbientError(ClusterErrorCode.NO_HEALTHY_UPSTREAM, "no healthy upstream", {
    details: { cluster },
  });
}

/** The route names a subset no DestinationRule defines: the cluster does not exist. */
export function clusterNotFound(cluster: string): AmbientError {
  return new AmbientError(ClusterErrorCode.CLUSTER_NOT_FOUND, `cluster ${cluster} not found`, {
    details: { cluster },
  });
}

/** The request names a host the waypoint knows no service or workload for. */
export function unknownDestination(host: string): AmbientError {
  return new AmbientError(ClusterErrorCode.UNKNOWN_DESTINATION, `no route to ${host}`, { details: { host } });
}

/** A route's share for a Gateway API backendRef that resolved to nothing: 500, as the Gateway API says. */
export function invalidBackend(host: string): AmbientError {
  const backend = host.slice(0, host.length - INVALID_BACKEND_HOST_SUFFIX.length);
  return new AmbientError(ClusterErrorCode.INVALID_BACKEND, `backendRef ${backend} does not resolve`, {
    details: { backend },
  });
}
