// Which CONNECT targets this waypoint tunnels to: the services, and the workloads, whose xDS names it
// as their waypoint. Anything else (another service, the node, loopback, the waypoint's own ports,
// where its admin answers /quitquitquit) is refused: the waypoint's 15008 is never an open proxy.

import {
  AmbientError,
  canonicalIp,
  type GatewayAddress,
  ipText,
  type Service,
  WaypointErrorCode,
  type Workload,
} from "@ambient/core";
import type { ProxyState } from "@ambient/dataplane";

export interface WaypointSelf {
  name: string;
  namespace: string;
  /** The waypoint pod's IP. */
  ip: string;
}

export type ServedDestination =
  | { ip: string; service: Service; workload?: undefined }
  | { ip: string; workload: Workload; service?: undefined }
  | { refuse: AmbientError };

/** No such service or workload behind this waypoint (503 NR, as ztunnel answers for no local workload). */
const notServed = (reason: string) => ({ refuse: new AmbientError(WaypointErrorCode.NOT_SERVED, reason) });

export function servedDestination(
  state: Pick<ProxyState, "serviceByVip" | "workloadByIp">,
  self: WaypointSelf,
  address: string,
  authority: string,
): ServedDestination {
  const ip = canonicalIp(address) ?? address;
  if (ip === canonicalIp(self.ip)) {
    return notServed(`${authority} is this waypoint itself`);
  }
  const service = state.serviceByVip(ip);
  if (service && isSelf(service.waypoint, self)) return { ip, service };
  const workload = service ? undefined : state.workloadByIp(ip);
  if (workload && isSelf(workload.waypoint, self)) return { ip, workload };
  const what = service
    ? `service ${service.namespace}/${service.name}`
    : workload
      ? `workload ${workload.namespace}/${workload.name}`
      : "no service or workload";
  return notServed(`${authority} is ${what}, not one that uses waypoint ${self.namespace}/${self.name}`);
}

/** The control plane names a waypoint by its Service's hostname (or, as Istio allows, its address). */
function isSelf(gateway: GatewayAddress | undefined, self: WaypointSelf): boolean {
  if (!gateway) return false;
  if (gateway.address) return ipText(gateway.address.address) === canonicalIp(self.ip);
  const host = gateway.hostname;
  return (
    host !== undefined &&
    host.namespace === self.namespace &&
    host.hostname === `${self.name}.${self.namespace}.svc.cluster.local`
  );
}
