// Which ports an ingress gateway listens on, and what it serves on each: compiled from the L7
// resources the control plane sent (translate/ingress.ts) and this gateway's own pod. Two APIs
// describe a gateway and both compile to the same plan:
//   - Istio's Gateway (networking.istio.io): its servers, when its selector matches this pod;
//   - a Gateway API Gateway of class `istio`: its listeners, when this pod carries its
//     gateway.networking.k8s.io/gateway-name label in its namespace.
// Pure: resources in, plan out; the listeners (listeners.ts) reconcile to it.

import type { L7Resource } from "@ambient/core";

export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
const INGRESS_CLASS = "istio";

export type ServerProtocol = "HTTP" | "HTTPS" | "TLS" | "TCP";

export interface IngressServer {
  /** "<namespace>/<name>" of the Gateway object this server comes from. */
  gateway: string;
  /** Lowercase host patterns: "*", "*.example.com", "example.com" (namespace parts dropped). */
  hosts: string[];
  protocol: ServerProtocol;
  /** SIMPLE: terminate with `credential` ("<namespace>/<secret>"); PASSTHROUGH: route by SNI. */
  tls?: { mode: "SIMPLE" | "PASSTHROUGH"; credential?: string };
  /** An HTTP server that answers every request with a redirect to https (tls.httpsRedirect). */
  httpsRedirect: boolean;
}

export interface IngressPort {
  port: number;
  /** HTTPS and TLS servers: the connection starts with a TLS handshake. */
  tls: boolean;
  /** TCP servers: connections are routed by port alone (VirtualService `tcp:`), bytes untouched. */
  tcp?: boolean;
  servers: IngressServer[];
}

export interface IngressPlan {
  /** The Gateways this pod serves, "<namespace>/<name>": VirtualServices bind to these. */
  gateways: string[];
  ports: IngressPort[];
  /** Why a server or listener was left out (logged once per compile). */
  skipped: string[];
}

export interface IngressSelf {
  namespace: string;
  /** This pod's labels (from its Pod resource). */
  labels: Readonly<Record<string, string>>;
}

interface IstioServerSpec {
  port?: { number?: number; protocol?: string };
  hosts?: string[];
  tls?: { mode?: string; credentialName?: string; httpsRedirect?: boolean };
}

interface ListenerSpec {
  name?: string;
  port?: number;
  protocol?: string;
  hostname?: string;
  tls?: { mode?: string; certificateRefs?: { name?: string; namespace?: string }[] };
}

export function compileIngressPlan(resources: Iterable<L7Resource>, self: IngressSelf): IngressPlan {
  const gateways: string[] = [];
  const servers: { port: number; server: IngressServer }[] = [];
  const skipped: string[] = [];
  for (const r of resources) {
    if (r.kind !== "Gateway") continue;
    const key = `${r.namespace}/${r.name}`;
    if (r.apiVersion.startsWith("networking.istio.io/")) {
      const spec = (r.spec ?? {}) as { selector?: Record<string, string>; servers?: IstioServerSpec[] };
      if (!selects(spec.selector, self.labels)) continue;
      gateways.push(key);
      for (const s of spec.servers ?? []) {
        const server = istioServer(key, s);
        if (typeof server === "string") skipped.push(`Gateway ${key}: ${server}`);
        else servers.push({ port: s.port?.number ?? 0, server });
      }
    } else {
      const spec = (r.spec ?? {}) as { gatewayClassName?: string; listeners?: ListenerSpec[] };
      if (spec.gatewayClassName !== INGRESS_CLASS) continue;
      if (r.namespace !== self.namespace || self.labels[GATEWAY_NAME_LABEL] !== r.name) continue;
      gateways.push(key);
      for (const l of spec.listeners ?? []) {
        const server = listenerServer(key, r.namespace, l);
        if (typeof server === "string") skipped.push(`Gateway ${key} listener ${l.name}: ${server}`);
        else servers.push({ port: l.port ?? 0, server });
      }
    }
  }
  const byPort = new Map<number, IngressPort>();
  const kindOf = (p: ServerProtocol) => (p === "HTTP" ? "HTTP" : p === "TCP" ? "TCP" : "TLS");
  for (const { port, server } of servers) {
    const kind = kindOf(server.protocol);
    let entry = byPort.get(port);
    if (!entry) {
      entry = { port, tls: kind === "TLS", ...(kind === "TCP" ? { tcp: true } : {}), servers: [] };
      byPort.set(port, entry);
    }
    const have = kindOf(entry.servers[0]?.protocol ?? server.protocol);
    if (have !== kind) {
      // Validation refuses this within one Gateway; two Gateways can still disagree.
      skipped.push(`Gateway ${server.gateway}: port ${port} is already served as ${have} by another Gateway`);
      continue;
    }
    entry.servers.push(server);
  }
  return {
    gateways: gateways.sort(),
    ports: [...byPort.values()].sort((a, b) => a.port - b.port),
    skipped,
  };
}

function selects(
  selector: Record<string, string> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/** "ns/host", "*\/host", "./host" → "host": the namespace part says which VirtualServices may bind. */
function hostPart(host: string): string {
  const slash = host.indexOf("/");
  return (slash === -1 ? host : host.slice(slash + 1)).toLowerCase();
}

function istioServer(gateway: string, s: IstioServerSpec): IngressServer | string {
  const protocol = (s.port?.protocol ?? "").toUpperCase();
  const hosts = (s.hosts ?? []).map(hostPart);
  if (protocol === "TCP") return { gateway, hosts, protocol: "TCP", httpsRedirect: false };
  if (protocol === "HTTP" || protocol === "HTTP2" || protocol === "GRPC")
    return { gateway, hosts, protocol: "HTTP", httpsRedirect: s.tls?.httpsRedirect === true };
  if (protocol === "TCP") return { gateway, hosts, protocol: "TCP", httpsRedirect: false };
  if (protocol === "HTTPS" || protocol === "TLS") {
    const mode = s.tls?.mode ?? "SIMPLE";
    if (mode === "PASSTHROUGH")
      return { gateway, hosts, protocol: "TLS", tls: { mode }, httpsRedirect: false };
    if (mode !== "SIMPLE") return `tls.mode ${mode} is not served`;
    if (!s.tls?.credentialName) return "tls.credentialName is required";
    // Istio reads credentialName in the namespace of the gateway's pod (translate/ingress.ts).
    return {
      gateway,
      hosts,
      protocol: protocol as ServerProtocol,
      tls: { mode, credential: s.tls.credentialName },
      httpsRedirect: false,
    };
  }
  return `protocol ${protocol || "(none)"} is not served`;
}

function listenerServer(gateway: string, namespace: string, l: ListenerSpec): IngressServer | string {
  const hosts = [(l.hostname ?? "*").toLowerCase()];
  if (l.protocol === "HTTP") return { gateway, hosts, protocol: "HTTP", httpsRedirect: false };
  if (l.protocol === "TCP") return { gateway, hosts: ["*"], protocol: "TCP", httpsRedirect: false };
  if (l.protocol === "TCP") return { gateway, hosts: ["*"], protocol: "TCP", httpsRedirect: false };
  if (l.protocol === "HTTPS" || l.protocol === "TLS") {
    const mode = l.tls?.mode ?? "Terminate";
    if (mode === "Passthrough")
      return { gateway, hosts, protocol: "TLS", tls: { mode: "PASSTHROUGH" }, httpsRedirect: false };
    const ref = l.tls?.certificateRefs?.[0];
    if (!ref?.name) return "tls.certificateRefs names no Secret";
    if (ref.namespace !== undefined && ref.namespace !== namespace)
      return "a Secret in another namespace is refused (no ReferenceGrant support)";
    return {
      gateway,
      hosts,
      protocol: l.protocol === "HTTPS" ? "HTTPS" : "TLS",
      tls: { mode: "SIMPLE", credential: `${namespace}/${ref.name}` },
      httpsRedirect: false,
    };
  }
  return `protocol ${l.protocol ?? "(none)"} is not served (HTTP, HTTPS, TLS, TCP)`;
}

/** Istio credentialName → "<pod namespace>/<name>"; Gateway API refs are already qualified. */
export function credentialKey(server: IngressServer, podNamespace: string): string | undefined {
  const c = server.tls?.credential;
  if (!c) return undefined;
  return c.includes("/") ? c : `${podNamespace}/${c}`;
}

/** Whether a server's host pattern covers `host` (lowercase, no port). */
export function serverHostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}

/** The server on a port whose hosts cover `host` most specifically (exact over wildcard), if any. */
export function serverFor(port: IngressPort, host: string | undefined): IngressServer | undefined {
  let best: IngressServer | undefined;
  let bestScore = -1;
  for (const server of port.servers) {
    for (const pattern of server.hosts) {
      if (host === undefined ? pattern !== "*" : !serverHostMatches(pattern, host)) continue;
      const score = pattern === "*" ? 0 : pattern.startsWith("*.") ? pattern.length : Number.MAX_SAFE_INTEGER;
      if (score > bestScore) {
        best = server;
        bestScore = score;
      }
    }
  }
  if (best || host !== undefined) return best;
  // No SNI at all: only a server for any host ("*") can take the connection.
  return port.servers.find((s) => s.hosts.includes("*"));
}
