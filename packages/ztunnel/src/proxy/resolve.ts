// Outbound routing: where does a connection from a local pod to (host, port) go? A service VIP or
// name picks a healthy endpoint; a pod IP is that workload; a destination with a waypoint goes to
// the waypoint; mesh workloads get HBONE; everything else is plain TCP passthrough.

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import {
  type GatewayAddress,
  hostPort,
  ipText,
  ProxyErrorCode,
  type Service,
  type Workload,
} from "@ambient/core";
import { proxyError } from "./errors.js";

/** The lookups routing needs; ProxyState provides them. */
export interface MeshLookup {
  workloadByIp(ip: string): Workload | undefined;
  serviceByVip(ip: string): Service | undefined;
  serviceByHostname(hostname: string): Service | undefined;
  serviceByKey(key: string): Service | undefined;
  pickEndpoint(
    service: Service,
    servicePort: number,
    opts: { sourceWorkload?: Workload },
  ): { workload: Workload; targetPort: number } | undefined;
}

export const HBONE_PORT = 15008;

export interface HboneRoute {
  kind: "hbone" | "waypoint";
  /** Where the TLS connection goes: the destination pod's (or the waypoint's) 15008. */
  hboneAddress: { host: string; port: number };
  /** CONNECT :authority — podIP:targetPort, or for a waypoint the original VIP:port. */
  authority: string;
  /** SPIFFE IDs the server may present. */
  expectedIdentities: string[];
  destination?: Workload;
  service?: Service;
  waypoint?: Workload;
}

export interface PassthroughRoute {
  kind: "passthrough";
  host: string;
  port: number;
  destination?: Workload;
  service?: Service;
}

export type Route = HboneRoute | PassthroughRoute;

export type Target = { host: string; port: number };

const CLUSTER_SUFFIX = ".svc.cluster.local";

export function identityOf(w: Workload): string {
  return `spiffe://${w.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`;
}

function firstIp(w: Workload): string | undefined {
  const a = w.addresses[0];
  return a ? ipText(a) : undefined;
}

export class Router {
  constructor(
    private readonly mesh: MeshLookup,
    /** DNS for names outside the mesh; injectable for tests. */
    private readonly resolveName: (name: string) => Promise<string> = async (name) =>
      (await lookup(name)).address,
  ) {}

  async route(source: Workload | undefined, target: Target): Promise<Route> {
    if (isIP(target.host)) return this.routeIp(source, target.host, target.port);
    const name = target.host.toLowerCase().replace(/\.$/, "");
    const service = this.mesh.serviceByHostname(name);
    if (service) return this.routeService(source, service, target.port, hostPort(name, target.port));
    if (name.endsWith(CLUSTER_SUFFIX) || name.endsWith(".svc")) {
      throw proxyError(ProxyErrorCode.NO_ROUTE, `no service named ${name} in the mesh`);
    }
    let ip: string;
    try {
      ip = await this.resolveName(name);
    } catch (err) {
      throw proxyError(ProxyErrorCode.NO_ROUTE, `cannot resolve ${name}: ${(err as Error).message}`, err);
    }
    return this.routeIp(source, ip, target.port);
  }

  private routeIp(source: Workload | undefined, ip: string, port: number): Route {
    const service = this.mesh.serviceByVip(ip);
    if (service) return this.routeService(source, service, port, hostPort(ip, port));
    const workload = this.mesh.workloadByIp(ip);
    if (workload) return this.routeWorkload(source, workload, ip, port);
    return { kind: "passthrough", host: ip, port };
  }

  private routeService(
    source: Workload | undefined,
    service: Service,
    port: number,
    original: string,
  ): Route {
    if (service.waypoint && !this.isWaypointItself(source, service.waypoint)) {
      const vip = service.addresses[0] ? hostPort(ipText(service.addresses[0].address), port) : original;
      return this.viaWaypoint(source, service.waypoint, vip, { service });
    }
    const picked = this.mesh.pickEndpoint(service, port, source ? { sourceWorkload: source } : {});
    if (!picked) {
      throw proxyError(
        ProxyErrorCode.NO_HEALTHY_UPSTREAM,
        `service ${service.hostname} has no healthy endpoint for port ${port}`,
      );
    }
    const ip = firstIp(picked.workload);
    if (!ip)
      throw proxyError(ProxyErrorCode.NO_HEALTHY_UPSTREAM, `endpoint ${picked.workload.uid} has no address`);
    // An endpoint with a waypoint of its own (workload or per-service-account waypoint) is reached
    // through it, addressed to the endpoint itself.
    if (picked.workload.waypoint && !this.isWaypointItself(source, picked.workload.waypoint)) {
      return this.viaWaypoint(source, picked.workload.waypoint, hostPort(ip, picked.targetPort), {
        service,
        destination: picked.workload,
      });
    }
    return this.direct(picked.workload, ip, picked.targetPort, service);
  }

  private routeWorkload(source: Workload | undefined, workload: Workload, ip: string, port: number): Route {
    if (workload.waypoint && !this.isWaypointItself(source, workload.waypoint)) {
      return this.viaWaypoint(source, workload.waypoint, hostPort(ip, port), { destination: workload });
    }
    return this.direct(workload, ip, port, undefined);
  }

  private direct(workload: Workload, ip: string, port: number, service: Service | undefined): Route {
    if (workload.tunnelProtocol !== "HBONE") {
      return { kind: "passthrough", host: ip, port, destination: workload, ...(service ? { service } : {}) };
    }
    const expected = [identityOf(workload), ...(service?.subjectAltNames ?? [])];
    return {
      kind: "hbone",
      hboneAddress: { host: ip, port: HBONE_PORT },
      authority: hostPort(ip, port),
      expectedIdentities: expected,
      destination: workload,
      ...(service ? { service } : {}),
    };
  }

  private viaWaypoint(
    source: Workload | undefined,
    gateway: GatewayAddress,
    authority: string,
    dest: { service?: Service; destination?: Workload },
  ): Route {
    const waypoint = this.waypointWorkload(source, gateway);
    const ip = waypoint && firstIp(waypoint);
    if (!waypoint || !ip) {
      throw proxyError(
        ProxyErrorCode.NO_HEALTHY_UPSTREAM,
        `waypoint ${describeGateway(gateway)} has no ready instance`,
      );
    }
    return {
      kind: "waypoint",
      hboneAddress: { host: ip, port: gateway.hboneMtlsPort || HBONE_PORT },
      authority,
      expectedIdentities: [identityOf(waypoint)],
      waypoint,
      ...dest,
    };
  }

  private waypointWorkload(source: Workload | undefined, gateway: GatewayAddress): Workload | undefined {
    if (gateway.address) return this.mesh.workloadByIp(ipText(gateway.address.address));
    if (gateway.hostname) {
      const svc = this.mesh.serviceByKey(`${gateway.hostname.namespace}/${gateway.hostname.hostname}`);
      if (!svc) return undefined;
      const port = svc.ports[0]?.servicePort ?? HBONE_PORT;
      return this.mesh.pickEndpoint(svc, port, source ? { sourceWorkload: source } : {})?.workload;
    }
    return undefined;
  }

  /** A waypoint's own outbound traffic must not loop back into itself. */
  private isWaypointItself(source: Workload | undefined, gateway: GatewayAddress): boolean {
    if (!source) return false;
    if (gateway.address) return source.addresses.some((a) => ipText(a) === ipText(gateway.address!.address));
    if (gateway.hostname) {
      const key = `${gateway.hostname.namespace}/${gateway.hostname.hostname}`;
      return key in source.services;
    }
    return false;
  }
}

function describeGateway(g: GatewayAddress): string {
  if (g.hostname) return `${g.hostname.namespace}/${g.hostname.hostname}`;
  if (g.address) return ipText(g.address.address);
  return "(empty)";
}
