// TLS passthrough and TCP at an ingress gateway: a VirtualService bound to the gateway routes a
// connection it does not decrypt by its SNI (`tls: [{match: [{sniHosts, port}], route: [...]}]`),
// as Envoy's filter chains do for a PASSTHROUGH server, and a TCP server's connection by port
// (`tcp: [{match: [{port}], route: [...]}]`). The first rule whose match covers the SNI (and) port
// wins; weights pick among its destinations. No rule: the connection is closed.

import type { L7Resource } from "@ambient/core";
import { boundTo } from "../route/compile.js";
import { defaultHostResolver, resolveHost } from "../route/hosts.js";
import { serverHostMatches } from "./plan.js";

interface RuleSpec {
  match?: { sniHosts?: string[]; port?: number; gateways?: string[] }[];
  route?: { destination?: { host?: string; port?: { number?: number } }; weight?: number }[];
}

export interface TlsDestination {
  host: string;
  port: number;
  /** "<namespace>/<name>" of the VirtualService, for the log. */
  virtualService: string;
}

interface CompiledTlsRule {
  kind: "tls" | "tcp";
  virtualService: string;
  namespace: string;
  vsHosts: string[];
  matches: { sniHosts: string[]; port?: number; gateways?: string[] }[];
  routes: { host: string; port: number; weight: number }[];
}

export class TlsRoutes {
  private readonly rules: CompiledTlsRule[] = [];

  constructor(
    virtualServices: readonly L7Resource[],
    private readonly gateways: readonly string[],
  ) {
    for (const vs of virtualServices) {
      const spec = (vs.spec ?? {}) as {
        hosts?: string[];
        gateways?: string[];
        tls?: RuleSpec[];
        tcp?: RuleSpec[];
      };
      if (!boundTo(spec.gateways, vs.namespace, gateways)) continue;
      for (const [kind, rules] of [
        ["tls", spec.tls ?? []],
        ["tcp", spec.tcp ?? []],
      ] as const)
        for (const rule of rules) {
          this.rules.push({
            kind,
            virtualService: `${vs.namespace}/${vs.name}`,
            namespace: vs.namespace,
            vsHosts: (spec.hosts ?? []).map((h) => h.toLowerCase()),
            matches: (rule.match ?? []).map((m) => ({
              sniHosts: (m.sniHosts ?? []).map((h) => h.toLowerCase()),
              ...(m.port !== undefined ? { port: m.port } : {}),
              ...(m.gateways ? { gateways: m.gateways } : {}),
            })),
            routes: (rule.route ?? []).flatMap((r) =>
              r.destination?.host
                ? [
                    {
                      host: resolveHost(r.destination.host, vs.namespace, defaultHostResolver),
                      port: r.destination.port?.number ?? 0,
                      weight: r.weight ?? 0,
                    },
                  ]
                : [],
            ),
          });
        }
    }
  }

  /** Where a passthrough connection with this SNI on this gateway port goes, if anywhere. */
  route(
    serverName: string | undefined,
    port: number,
    random: () => number = Math.random,
  ): TlsDestination | undefined {
    if (!serverName) return undefined; // without SNI there is nothing to route by
    for (const rule of this.rules) {
      if (rule.kind !== "tls") continue;
      const hit = rule.matches.some(
        (m) =>
          (m.port === undefined || m.port === port) &&
          (m.gateways === undefined || boundTo(m.gateways, rule.namespace, this.gateways)) &&
          // Istio: sniHosts default to the VirtualService's hosts.
          (m.sniHosts.length > 0 ? m.sniHosts : rule.vsHosts).some((h) => serverHostMatches(h, serverName)),
      );
      if (!hit || rule.routes.length === 0) continue;
      const picked = pickWeighted(rule.routes, random);
      return { host: picked.host, port: picked.port || port, virtualService: rule.virtualService };
    }
    return undefined;
  }

  /** Where a TCP server's connection on this gateway port goes: the first `tcp:` rule for the port. */
  routeTcp(port: number, random: () => number = Math.random): TlsDestination | undefined {
    for (const rule of this.rules) {
      if (rule.kind !== "tcp" || rule.routes.length === 0) continue;
      const hit =
        rule.matches.length === 0 ||
        rule.matches.some(
          (m) =>
            (m.port === undefined || m.port === port) &&
            (m.gateways === undefined || boundTo(m.gateways, rule.namespace, this.gateways)),
        );
      if (!hit) continue;
      const picked = pickWeighted(rule.routes, random);
      return { host: picked.host, port: picked.port || port, virtualService: rule.virtualService };
    }
    return undefined;
  }
}

function pickWeighted<T extends { weight: number }>(routes: T[], random: () => number): T {
  const total = routes.reduce((n, r) => n + r.weight, 0);
  // Istio: a single destination needs no weight; all zero means equal shares.
  if (total === 0) return routes[Math.floor(random() * routes.length)]!;
  let at = random() * total;
  for (const r of routes) {
    at -= r.weight;
    if (at < 0) return r;
  }
  return routes[routes.length - 1]!;
}
