// Outbound routing: where does a connection from a local pod to (host, port) go? A service VIP or
// name picks a healthy endpoint (a PASSTHROUGH service picks none: the address dialed); a pod IP is
// that workload; a destination with a waypoint goes to the waypoint; mesh workloads get HBONE;
// everything else is plain TCP passthrough. DNS names (outside the mesh, DNS endpoints of a
// ServiceEntry) are resolved here, at connect time.

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import {
  errorMessage,
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
    /** DNS, for names outside the mesh and DNS endpoints; injectable for tests. */
    private readonly resolveName: (name: string) => Promise<string> = async (name) =>
      (await lookup(name)).address,
  ) {}

  async route(source: Workload | undefined, target: Target): Promise<Route> {
    if (isIP(target.host)) return this.routeIp(source, target.host, target.port);
    const name = target.host.toLowerCase().replace(/\.$/, "");
    const service = this.mesh.serviceByHostname(name);
    if (service) return this.routeService(source, service, { host: name, port: target.port });
    if (name.endsWith(CLUSTER_SUFFIX) || name.endsWith(".svc")) {
      throw proxyError(ProxyErrorCode.NO_ROUTE, `no service named ${name} in the mesh`);
    }
    const ip = await this.resolve(name, ProxyErrorCode.NO_ROUTE, name);
    return this.routeIp(source, ip, target.port);
  }

  private async routeIp(source: Workload | undefined, ip: string, port: number): Promise<Route> {
    const service = this.mesh.serviceByVip(ip);
    if (service) return this.routeService(source, service, { host: ip, port });
    const workload = this.mesh.workloadByIp(ip);
    if (workload) return this.routeWorkload(source, workload, ip, port);
    return { kind: "passthrough", host: ip, port };
  }

  /** `original`: what the client dialed, the service's VIP or its hostname, and the port. */
  private async routeService(
    source: Workload | undefined,
    service: Service,
    original: Target,
  ): Promise<Route> {
    const port = original.port;
    if (service.waypoint && !this.isWaypointItself(source, service.waypoint)) {
      // The VIP the client dialed, not the first: a PASSTHROUGH service's addresses are distinct
      // destinations, which the waypoint reaches by this authority. Dialed by name: the first VIP.
      const vip = isIP(original.host)
        ? original.host
        : service.addresses[0]
          ? ipText(service.addresses[0].address)
          : original.host;
      return this.viaWaypoint(source, service.waypoint, hostPort(vip, port), { service });
    }
    if (service.loadBalancing?.mode === "PASSTHROUGH") return this.passthroughService(service, original);
    const picked = this.mesh.pickEndpoint(service, port, source ? { sourceWorkload: source } : {});
    if (!picked) {
      throw proxyError(
        ProxyErrorCode.NO_HEALTHY_UPSTREAM,
        `service ${service.hostname} has no healthy endpoint for port ${port}`,
      );
    }
    const ip = firstIp(picked.workload) ?? (await this.endpointIp(picked.workload, service));
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

  /**
   * Istio's PASSTHROUGH (a ServiceEntry with `resolution: NONE`): no endpoint is picked, the
   * connection goes where the client sent it. A client that dialed the name reaches the service's
   * VIP (for such an entry, the external address itself) or, without one, what DNS says.
   */
  private async passthroughService(service: Service, original: Target): Promise<PassthroughRoute> {
    const vip = service.addresses[0];
    const host = isIP(original.host)
      ? original.host
      : vip
        ? ipText(vip.address)
        : await this.resolve(original.host, ProxyErrorCode.NO_ROUTE, original.host);
    return { kind: "passthrough", host, port: original.port, service };
  }

  /**
   * A DNS endpoint (Istio's form of a ServiceEntry endpoint with `resolution: DNS`): a hostname
   * and no address, resolved per connection as the proxy connects.
   */
  private async endpointIp(workload: Workload, service: Service): Promise<string> {
    if (!workload.hostname) {
      throw proxyError(ProxyErrorCode.NO_HEALTHY_UPSTREAM, `endpoint ${workload.uid} has no address`);
    }
    return this.resolve(
      workload.hostname,
      ProxyErrorCode.NO_HEALTHY_UPSTREAM,
      `${workload.hostname} (endpoint of ${service.hostname})`,
    );
  }

  private async resolve(name: string, code: string, what: string): Promise<string> {
    try {
      return await this.resolveName(name);
    } catch (err) {
      throw proxyError(code, `cannot resolve ${what}: ${errorMessage(err)}`, err);
    }
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
