// Kubernetes Service → istio.workload.Service: hostname, VIPs, ports, load-balancing preference
// and waypoint, as Istio's ambient index builds them. Which waypoint is decided in waypoints.ts;
// subject alt names stay empty because Istio only sets them for ServiceEntries.

import type {
  AppProtocol,
  GatewayAddress,
  LoadBalancing,
  NetworkAddress,
  Port,
  Service as XdsService,
} from "@ambient/core";
import { parseIp } from "@ambient/core";
import { namespaceOf, type Service, type ServicePort } from "@ambient/kube";
import { annotationsOf, serviceHostname, type TranslateContext } from "./context.js";

const TRAFFIC_DISTRIBUTION_ANNOTATION = "networking.istio.io/traffic-distribution";

// Istio's mapping of Kubernetes trafficDistribution values: prefer the closest endpoints and fail
// over outwards, network first. PreferSameZone is the newer name of PreferClose.
const PREFER_ZONE: LoadBalancing = {
  routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE"],
  mode: "FAILOVER",
};
const TRAFFIC_DISTRIBUTIONS: Record<string, LoadBalancing> = {
  PreferClose: PREFER_ZONE,
  PreferSameZone: PREFER_ZONE,
  PreferSameNode: { routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE", "NODE"], mode: "FAILOVER" },
};

/** The waypoint that receives a Service's traffic (waypoints.ts); none by default. */
export type ServiceWaypointLookup = (svc: Service) => GatewayAddress | undefined;

export function translateService(
  svc: Service,
  ctx: TranslateContext,
  waypointFor: ServiceWaypointLookup,
): XdsService {
  const namespace = namespaceOf(svc);
  const spec = svc.spec ?? {};
  const result: XdsService = {
    name: svc.metadata.name,
    namespace,
    hostname: serviceHostname(svc.metadata.name, namespace),
    addresses: vips(svc, ctx),
    ports: (spec.ports ?? []).map(servicePort),
    subjectAltNames: [],
  };
  const waypoint = waypointFor(svc);
  if (waypoint) result.waypoint = waypoint;
  const lb = loadBalancing(svc, ctx);
  if (lb) result.loadBalancing = lb;
  return result;
}

/** clusterIP, then the rest of clusterIPs (dual stack); headless ("None") services have none. */
function vips(svc: Service, ctx: TranslateContext): NetworkAddress[] {
  const spec = svc.spec ?? {};
  const seen = new Set<string>();
  const out: NetworkAddress[] = [];
  for (const ip of [spec.clusterIP, ...(spec.clusterIPs ?? [])]) {
    if (!ip || ip === "None" || seen.has(ip)) continue;
    seen.add(ip);
    const address = parseIp(ip);
    if (address) out.push({ network: ctx.options.network, address });
  }
  return out;
}

function servicePort(port: ServicePort): Port {
  // A named target port resolves per pod (workloads.ts); Istio sends 0 for "see the workload".
  // An absent one is the service port, the default the API server would have filled in.
  const target = port.targetPort;
  const out: Port = {
    servicePort: port.port,
    targetPort: typeof target === "number" ? target : target === undefined ? port.port : 0,
  };
  const appProtocol = appProtocolOf(port.appProtocol, port.name);
  if (appProtocol !== "UNKNOWN") out.appProtocol = appProtocol;
  return out;
}

/**
 * Istio's protocol selection: the port's appProtocol, else the prefix of its name before "-"
 * (`http-web`, `grpc`). Only the HTTP flavours matter to ztunnel; everything else is opaque TCP.
 */
function appProtocolOf(appProtocol: string | undefined, name: string | undefined): AppProtocol {
  const raw = (appProtocol ?? name?.split("-")[0] ?? "").toLowerCase();
  switch (raw) {
    case "http":
      return "HTTP11";
    case "http2":
    case "h2c":
    case "kubernetes.io/h2c":
      return "HTTP2";
    case "grpc":
      return "GRPC";
    default:
      return "UNKNOWN";
  }
}

function loadBalancing(svc: Service, ctx: TranslateContext): LoadBalancing | undefined {
  // Istio reads its annotation first so it can be used on clusters whose API lacks the field.
  const value = annotationsOf(svc)[TRAFFIC_DISTRIBUTION_ANNOTATION] ?? svc.spec?.trafficDistribution;
  if (value === undefined || value === "") return undefined;
  const lb = TRAFFIC_DISTRIBUTIONS[value];
  if (!lb) {
    ctx.warn(
      svc,
      `traffic distribution ${JSON.stringify(value)} is not supported; endpoints are used without preference`,
    );
    return undefined;
  }
  return { routingPreference: [...lb.routingPreference], mode: lb.mode };
}
