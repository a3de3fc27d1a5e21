// TLSRoute and TCPRoute (Gateway API v1alpha2) on ingress Gateways of class istio: each becomes a
// VirtualService bound to the Gateway with `tls:` rules (routed by SNI, the connection passed
// through undecrypted) or `tcp:` rules (by listener port), the form the gateway proxy routes by
// (waypoint/src/ingress/l4-routes.ts), as Istio's own conversion does. Attachment and backends
// are checked like HTTPRoutes' (gateway-routes.ts), with status per parentRef.

import {
  type BackendRef,
  type Gateway,
  type Json,
  type KubeObject,
  namespaceOf,
  type ParentReference,
  type Service,
  type TcpRoute,
  type TlsRoute,
  type VirtualService,
} from "@ambient/kube";
import type { TranslateContext } from "./context.js";
import {
  ACCEPTED,
  destination,
  ingressAttachment,
  type RouteParentStatus,
  resolveBackends,
} from "./gateway-routes.js";
import { isIngressGateway } from "./ingress.js";
import { keyOf } from "./snapshot.js";

export interface L4RoutesInput {
  tlsRoutes: readonly TlsRoute[];
  tcpRoutes: readonly TcpRoute[];
  services: readonly Service[];
  gateways: readonly Gateway[];
}

export interface L4RoutesResult {
  virtualServices: VirtualService[];
  routeStatus: Map<string, RouteParentStatus[]>;
}

/** The listener protocol each route kind attaches to. */
const LISTENER_PROTOCOL = { TLSRoute: "TLS", TCPRoute: "TCP" } as const;

export function translateL4Routes(input: L4RoutesInput, ctx: TranslateContext): L4RoutesResult {
  const services = new Map<string, Service>();
  for (const svc of input.services) services.set(`${namespaceOf(svc)}/${svc.metadata.name}`, svc);
  const gateways = new Map<string, Gateway>();
  for (const gw of input.gateways)
    if (isIngressGateway(gw)) gateways.set(`${namespaceOf(gw)}/${gw.metadata.name}`, gw);

  const virtualServices: VirtualService[] = [];
  const routeStatus = new Map<string, RouteParentStatus[]>();
  for (const route of [...input.tlsRoutes, ...input.tcpRoutes] as KubeObject[]) {
    const kind = route.kind as keyof typeof LISTENER_PROTOCOL;
    const spec = (route.spec ?? {}) as {
      parentRefs?: ParentReference[];
      hostnames?: string[];
      rules?: { backendRefs?: BackendRef[] }[];
    };
    const ns = namespaceOf(route);
    const resolved = resolveBackends(route as never, services);
    const parents: RouteParentStatus[] = [];
    // Gateway key → the ports of its listeners this route is on (several parentRefs to one Gateway,
    // one per listener, make one VirtualService: they would otherwise share its name).
    const attached = new Map<string, { gw: Gateway; ports: Set<number> }>();
    for (const parentRef of spec.parentRefs ?? []) {
      if (
        (parentRef.kind ?? "Gateway") !== "Gateway" ||
        (parentRef.group ?? "gateway.networking.k8s.io") !== "gateway.networking.k8s.io"
      )
        continue;
      const key = `${parentRef.namespace ?? ns}/${parentRef.name}`;
      const gw = gateways.get(key);
      if (!gw) continue; // not an ingress Gateway of ours: another controller's to report on
      const listeners = (gw.spec?.listeners ?? []).filter(
        (l) =>
          l.protocol === LISTENER_PROTOCOL[kind] &&
          (parentRef.sectionName === undefined || l.name === parentRef.sectionName) &&
          (parentRef.port === undefined || l.port === parentRef.port),
      );
      const refused =
        listeners.length === 0
          ? `Gateway ${key} has no ${LISTENER_PROTOCOL[kind]} listener${parentRef.sectionName ? ` named ${parentRef.sectionName}` : ""} for a ${kind}`
          : ingressAttachment(gw, route as never, parentRef);
      if (refused) {
        parents.push({
          parentRef,
          accepted: { status: "False", reason: "NotAllowedByListeners", message: refused },
          resolvedRefs: resolved.condition,
        });
        ctx.warn(route, `not applied to Gateway ${parentRef.name}: ${refused}`);
        continue;
      }
      parents.push({ parentRef, accepted: ACCEPTED, resolvedRefs: resolved.condition });
      let entry = attached.get(key);
      if (!entry) {
        entry = { gw, ports: new Set() };
        attached.set(key, entry);
      }
      for (const l of listeners) entry.ports.add(l.port);
    }
    for (const { gw, ports } of attached.values())
      virtualServices.push(
        l4VirtualService(
          route,
          kind,
          gw,
          [...ports].sort((a, b) => a - b),
          spec,
          resolved.missing,
        ),
      );
    if (resolved.condition.status === "False") ctx.warn(route, resolved.condition.message);
    if (parents.length > 0) routeStatus.set(keyOf(route), parents);
  }
  return { virtualServices, routeStatus };
}

function l4VirtualService(
  route: KubeObject,
  kind: "TLSRoute" | "TCPRoute",
  gw: Gateway,
  ports: number[],
  spec: { hostnames?: string[]; rules?: { backendRefs?: BackendRef[] }[] },
  missing: ReadonlySet<BackendRef>,
): VirtualService {
  const ns = namespaceOf(route);
  const hostnames = spec.hostnames ?? [];
  // A Gateway of another namespace is named with it: two Gateways may share a name.
  const gwName = namespaceOf(gw) === ns ? gw.metadata.name : `${gw.metadata.name}.${namespaceOf(gw)}`;
  const rules: Json[] = (spec.rules ?? []).map((rule) => {
    // A backend that does not resolve takes no share: its connections would have nowhere to go.
    const backends = (rule.backendRefs ?? []).filter((b) => !missing.has(b));
    const match = ports.map((port) => ({
      port,
      ...(kind === "TLSRoute" ? { sniHosts: hostnames.length > 0 ? hostnames : ["*"] } : {}),
    }));
    return {
      match,
      route: backends.map((b) => ({ destination: destination(b, ns), weight: b.weight ?? 1 })),
    };
  });
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: {
      name: `${kind.toLowerCase()}.${route.metadata.name}@gateway.${gwName}`,
      namespace: ns,
      annotations: { "ambient.io/generated-from": `${kind}/${ns}/${route.metadata.name}` },
    },
    spec: {
      hosts: kind === "TLSRoute" && hostnames.length > 0 ? [...hostnames] : ["*"],
      gateways: [`${namespaceOf(gw)}/${gw.metadata.name}`],
      [kind === "TLSRoute" ? "tls" : "tcp"]: rules,
    },
  };
}
