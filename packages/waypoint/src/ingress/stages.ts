// What an ingress gateway does differently in the request stages: the route stage first finds the
// server of the port that covers the request's Host (none: 404 NR, as Envoy's gateway answers a
// host no server lists), redirects to https for an httpsRedirect server, and only then routes by
// the VirtualServices bound to the gateway (route/compile.ts with `gateways`). On a TLS connection
// the Host must belong to the server the SNI chose, so a certificate for one host cannot front
// requests for another. Which policies a gateway enforces on itself is `appliesToGateway`.

import type { L7Resource } from "@ambient/core";
import type { L7Request } from "../model/request.js";
import type { Sender } from "../proxy/request/attempt.js";
import type { RouteResult } from "../proxy/stages.js";
import { stripPort } from "../route/hosts.js";
import { type IngressPlan, type IngressPort, type IngressSelf, serverFor } from "./plan.js";

export function ingressRoute(
  plan: IngressPlan,
  routeByTable: (req: L7Request) => RouteResult,
): (req: L7Request) => RouteResult {
  const ports = new Map<number, IngressPort>(plan.ports.map((p) => [p.port, p]));
  return (req) => {
    const port = ports.get(req.port);
    const host = stripPort(req.authority.toLowerCase());
    const server = port && serverFor(port, host);
    if (!port || !server) return { kind: "no-route" };
    if (req.tls && serverFor(port, req.tls.serverName) !== server) return { kind: "no-route" };
    if (server.httpsRedirect)
      return { kind: "respond", status: 301, headers: { location: `https://${host}${req.path}` } };
    return routeByTable(req);
  };
}

/**
 * Whether an AuthorizationPolicy or RequestAuthentication without targetRefs applies to this
 * gateway pod, as to any workload: in the pod's namespace or the root namespace, with no selector
 * or one its labels match. (targetRefs naming the gateway's Gateway are PolicyStage's own rule.)
 */
export function appliesToGateway(r: L7Resource, self: IngressSelf, rootNamespace: string): boolean {
  const spec = (r.spec ?? {}) as {
    targetRef?: unknown;
    targetRefs?: unknown[];
    selector?: { matchLabels?: Record<string, string> };
  };
  if (spec.targetRef || (spec.targetRefs?.length ?? 0) > 0) return false;
  if (r.namespace !== self.namespace && r.namespace !== rootNamespace) return false;
  const match = Object.entries(spec.selector?.matchLabels ?? {});
  return match.every(([k, v]) => self.labels[k] === v);
}

/**
 * A gateway's upstream protocol. Inside the mesh the waypoint keeps the client's (h2c stays h2c);
 * at the edge the client's ALPN h2 says nothing about the app behind, so a request goes out over
 * HTTP/1.1 unless it is gRPC, which is HTTP/2 by definition.
 */
export function gatewayH2Sender(h2: Sender, http1: Sender): Sender {
  return (endpoint, request, body, signal, opts) =>
    (request.headers["content-type"] ?? "").startsWith("application/grpc")
      ? h2(endpoint, request, body, signal, opts)
      : http1(endpoint, request, body, signal, opts);
}
