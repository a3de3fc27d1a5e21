// What the DNS proxy answers itself, from ztunnel's xDS state: A and AAAA for Service hostnames
// and ServiceEntry hosts (wildcards too), the short names a pod's Kubernetes search list makes
// of them, and headless services' ready endpoints. Everything else is the upstream's.

import { ipText, type Service } from "@ambient/core";
import type { ProxyState } from "@ambient/dataplane";

/** Istio's ztunnel answers with a 30 s TTL: short enough to follow a Service's VIP change. */
export const ANSWER_TTL_SECONDS = 30;

export type LocalAnswer =
  /** The name is ours: its addresses of the asked family (none is NOERROR with no answers). */
  | { kind: "known"; hostname: string; addresses: string[] }
  /** Not a name of the mesh: the upstream resolver decides. */
  | { kind: "forward" };

export interface AnswerOptions {
  /** The querying pod's namespace: relative names resolve there, and it wins hostname ties. */
  namespace: string;
  /** Kubernetes' cluster domain. */
  domain?: string;
}

/** What to answer for `name` (any case, with or without the trailing dot) and `type` (A, AAAA, ...). */
export function answerFor(state: ProxyState, name: string, type: string, opts: AnswerOptions): LocalAnswer {
  const domain = opts.domain ?? "cluster.local";
  const service = findService(state, normalize(name), opts.namespace, domain);
  if (!service) return { kind: "forward" };
  const family = type === "A" ? 4 : type === "AAAA" ? 6 : 0;
  const all = addressesOf(state, service);
  // A ServiceEntry with neither addresses (given or auto-allocated) nor endpoint IPs: only the real
  // DNS knows its addresses. A Kubernetes Service is ours even with no endpoint ready (NOERROR, empty).
  if (all.length === 0 && !service.hostname.endsWith(`.svc.${domain}`)) return { kind: "forward" };
  const addresses = family === 0 ? [] : all.filter((ip) => ipFamily(ip) === family);
  return { kind: "known", hostname: service.hostname, addresses };
}

function normalize(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/**
 * Exact hostnames first (Service FQDNs, ServiceEntry hosts), then the nearest wildcard
 * ServiceEntry host (`*.example.com` covers every name below example.com), then the forms a
 * pod's search list `<ns>.svc.<domain> svc.<domain> <domain>` completes: `svc`, `svc.ns`,
 * `svc.ns.svc`.
 */
function findService(
  state: ProxyState,
  name: string,
  namespace: string,
  domain: string,
): Service | undefined {
  if (name.length === 0) return undefined;
  const exact = state.serviceByHostname(name, namespace);
  if (exact) return exact;
  const labels = name.split(".");
  for (let i = 1; i < labels.length; i++) {
    const wildcard = state.serviceByHostname(`*.${labels.slice(i).join(".")}`, namespace);
    if (wildcard) return wildcard;
  }
  const relative = relativeHostname(labels, namespace, domain);
  return relative === undefined ? undefined : state.serviceByHostname(relative, namespace);
}

function relativeHostname(labels: string[], namespace: string, domain: string): string | undefined {
  if (labels.length === 1) return `${labels[0]}.${namespace}.svc.${domain}`;
  if (labels.length === 2) return `${labels[0]}.${labels[1]}.svc.${domain}`;
  if (labels.length === 3 && labels[2] === "svc") return `${labels[0]}.${labels[1]}.svc.${domain}`;
  return undefined;
}

/** The VIPs, or for a headless service (no VIP) its healthy endpoints' addresses, sorted. */
function addressesOf(state: ProxyState, service: Service): string[] {
  const vips = service.addresses.map((a) => ipText(a.address)).filter((ip) => ip !== "");
  if (vips.length > 0) return vips;
  const ips = new Set<string>();
  for (const w of state.endpoints(service)) {
    if (w.status !== "HEALTHY") continue;
    for (const a of w.addresses) {
      const ip = ipText(a);
      if (ip !== "") ips.add(ip);
    }
  }
  return [...ips].sort();
}

function ipFamily(ip: string): 4 | 6 {
  return ip.includes(":") ? 6 : 4;
}
