// Stages for a waypoint with no L7 configuration: no authentication, everything authorized, each
// request routed to the service it was sent to with Istio's default retry policy, endpoints picked
// round robin among healthy ones (a PASSTHROUGH service: the original destination). The configured
// stages (l7-config.ts) fall back to these pieces.

import type { Service } from "@ambient/core";
import type { ProxyState } from "@ambient/dataplane";
import { noHealthyUpstream, unknownDestination } from "./cluster/errors.js";
import type { L7Request } from "./model/request.js";
import type { RetryPlan, Stages } from "./proxy/stages.js";
import { defaultRetryPolicy, shouldRetry } from "./route/retry.js";

/** Istio's default: 2 retries on connect-failure, refused-stream, unavailable, cancelled, 503. */
const DEFAULT_RETRY_POLICY = defaultRetryPolicy();
export const DEFAULT_RETRY: RetryPlan = {
  attempts: DEFAULT_RETRY_POLICY.attempts,
  shouldRetry: (o) => shouldRetry(DEFAULT_RETRY_POLICY, o),
};

export function serviceFor(state: ProxyState, req: L7Request, host: string): Service | undefined {
  return state.serviceByHostname(host) ?? state.serviceByVip(req.destination.ip);
}

/**
 * A PASSTHROUGH service (Istio's ServiceEntry with `resolution: NONE`) has no endpoint to pick: the
 * connection goes on, in plain TCP, to the address the client dialed, the VIP:port of the CONNECT
 * authority (for such an entry, the external address itself), as the ORIGINAL_DST cluster Istio
 * gives such a service does. A route's port does not change it; Envoy's ORIGINAL_DST ignores it too.
 */
export function originalDestination(
  service: Service,
  req: L7Request,
): { address: string; port: number } | undefined {
  if (service.loadBalancing?.mode !== "PASSTHROUGH") return undefined;
  return { address: req.destination.ip, port: req.destination.port };
}

export function defaultStages(state: ProxyState): Stages {
  return {
    authenticate: async () => ({ ok: true }),
    authorize: () => ({ allowed: true, reason: "no policy" }),
    authorizeTcp: () => ({ allowed: true, reason: "no policy" }),
    route: (req) => ({ kind: "forward", host: req.destination.host, retry: DEFAULT_RETRY }),
    pick: (req, target) => {
      const service = serviceFor(state, req, target.host);
      if (!service) {
        // Workload-addressed traffic: the destination pod itself.
        const w = state.workloadByIp(req.destination.ip);
        if (!w) return { ok: false, error: unknownDestination(target.host) };
        return { ok: true, endpoint: { workload: w, port: target.port, done: () => {} } };
      }
      const passthrough = originalDestination(service, req);
      if (passthrough) return { ok: true, service, endpoint: { ...passthrough, done: () => {} } };
      const picked = state.pickEndpoint(service, target.port);
      if (!picked) return { ok: false, error: noHealthyUpstream(target.host) };
      return {
        ok: true,
        service,
        endpoint: { workload: picked.workload, port: picked.targetPort, done: () => {} },
      };
    },
  };
}
