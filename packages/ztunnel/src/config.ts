// ztunnel's configuration: flags first, then Istio's environment names (NODE_NAME, XDS_ADDRESS,
// CA_ADDRESS, POD_NAME, INSTANCE_IP, ...), then defaults. One function, env injected, every problem
// reported at once. With POD_NAME set it runs as Istio's chart runs it: the control plane at
// istiod.istio-system.svc:15012 over TLS, the projected token and the root ConfigMap's file.

import { type EnvSource, type LogLevel, type OptionSpec, parseOptions } from "@ambient/core";
import { CONTROL_PLANE_OPTIONS, type ControlPlaneConfig, controlPlaneConfig } from "@ambient/dataplane";
import { parseUpstream, systemUpstream, type Upstream } from "./dns/forward.js";

export interface ZtunnelConfig {
  nodeName: string;
  /** The node's own address (in a pod: the ztunnel pod's INSTANCE_IP): admin (local mode), metrics and readiness listen here. */
  nodeIp: string;
  /** The ztunnel pod (Kubernetes mode); in local mode there is none and xDS names the node instead. */
  podName: string | undefined;
  podNamespace: string | undefined;
  serviceAccount: string | undefined;
  /** Addresses, TLS, token and root files of the control plane (xDS and CA). */
  controlPlane: ControlPlaneConfig;
  clusterId: string;
  trustDomain: string;
  adminPort: number;
  /** Local mode binds admin on the node address (every node shares loopback); cluster mode on 127.0.0.1. */
  adminOnNodeIp: boolean;
  metricsPort: number;
  readinessPort: number;
  drainDeadlineMs: number;
  /** SOCKS5 greeting on 15080, TLS handshake and first CONNECT on 15008: each must finish within this. */
  handshakeTimeoutMs: number;
  /** Connects to an app, a peer's 15008 or a passthrough destination give up after this. */
  connectTimeoutMs: number;
  certTtlSeconds: number;
  logLevel: LogLevel;
  accessLog: boolean;
  /** In-pod mode: the node agent's unix socket; pods and their netns come from the agent. */
  inpodUds: string | undefined;
  /**
   * Local mode: every listener (pods' and the node's) with SO_REUSEPORT, so that several ztunnel
   * processes can serve one node, the kernel spreading new connections over them. In-pod mode's
   * listeners always have it (rollouts).
   */
  reusePort: boolean;
  /** The DNS proxy on 15053 in every pod (Istio's ISTIO_META_DNS_CAPTURE); undefined when off. */
  dns: DnsConfig | undefined;
}

export interface DnsConfig {
  /** Where names the mesh does not know go: --dns-upstream, else /etc/resolv.conf's first nameserver. */
  upstream: Upstream;
  upstreamTimeoutMs: number;
}

/** Node's net.Server gained `reusePort` in 22.12 (and 23.1): earlier versions ignore the option. */
export function nodeHasReusePort(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

export const ZTUNNEL_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "node-name",
    env: "NODE_NAME",
    kind: "string",
    required: true,
    description: "the Kubernetes node this ztunnel serves",
  },
  {
    flag: "node-ip",
    env: "NODE_IP",
    kind: "string",
    description:
      "address of this node (admin in local mode, metrics, readiness; default $INSTANCE_IP, else 127.0.0.1)",
  },
  // Istio's chart sets these from the downward API.
  { flag: "pod-name", env: "POD_NAME", kind: "string", description: "this ztunnel's pod (Kubernetes mode)" },
  { flag: "pod-namespace", env: "POD_NAMESPACE", kind: "string", description: "this ztunnel's namespace" },
  { flag: "instance-ip", env: "INSTANCE_IP", kind: "string", description: "this ztunnel pod's IP" },
  {
    flag: "service-account",
    env: "SERVICE_ACCOUNT",
    kind: "string",
    description: "this ztunnel's service account",
  },
  ...CONTROL_PLANE_OPTIONS,
  {
    flag: "cluster-id",
    env: "CLUSTER_ID",
    kind: "string",
    default: "Kubernetes",
    description: "cluster name",
  },
  {
    flag: "trust-domain",
    env: "TRUST_DOMAIN",
    kind: "string",
    default: "cluster.local",
    description: "SPIFFE trust domain",
  },
  {
    flag: "admin-port",
    kind: "int",
    default: "15000",
    description: "admin: /config_dump, /logging, /quitquitquit",
  },
  {
    flag: "admin-on-node-ip",
    kind: "bool",
    default: "false",
    description: "bind admin on the node address instead of 127.0.0.1 (local mode)",
  },
  { flag: "metrics-port", kind: "int", default: "15020", description: "Prometheus /metrics" },
  { flag: "readiness-port", kind: "int", default: "15021", description: "/healthz/ready" },
  // Kubernetes' default terminationGracePeriodSeconds is 30 s: leave 5 s for the rest of shutdown.
  {
    flag: "drain-deadline",
    env: "DRAIN_DEADLINE",
    kind: "duration",
    default: "25s",
    description: "how long SIGTERM waits for open connections",
  },
  // A client that connects and stalls holds a socket and a timer until this: peer ztunnels handshake
  // in milliseconds. Node's TLS default is 120 s, nginx 60 s, Envoy's listener filters 15 s.
  {
    flag: "handshake-timeout",
    env: "HANDSHAKE_TIMEOUT",
    kind: "duration",
    default: "10s",
    description: "bound on a SOCKS5 greeting (15080), a TLS handshake and the first CONNECT after it (15008)",
  },
  // Envoy's cluster connect_timeout default is 5 s, Istio's ztunnel 10 s: an app on the same pod or a
  // peer on the node network answers well within it.
  {
    flag: "connect-timeout",
    env: "CONNECT_TIMEOUT",
    kind: "duration",
    default: "10s",
    description: "bound on connecting to an app (15006, 15008), a peer ztunnel or a passthrough destination",
  },
  {
    flag: "cert-ttl",
    kind: "duration",
    default: "24h",
    description: "requested workload certificate lifetime",
  },
  {
    flag: "log-level",
    env: "LOG_LEVEL",
    kind: "string",
    default: "info",
    description: "trace|debug|info|warn|error",
  },
  { flag: "access-log", kind: "bool", default: "true", description: "one JSON line per connection" },
  {
    flag: "inpod-uds",
    env: "INPOD_UDS",
    kind: "string",
    description: "in-pod mode: the CNI node agent's socket (pods are served inside their netns)",
  },
  {
    flag: "reuse-port",
    kind: "bool",
    default: "false",
    description:
      "local mode: listen with SO_REUSEPORT, so several ztunnel processes serve one node (Node >= 22.12)",
  },
  // Off by default, as in Istio before 1.25: it answers for the pods only once the CNI agent also
  // captures their port 53 (--dns-capture there), and both are switched on together.
  {
    flag: "dns-proxy",
    env: "ISTIO_META_DNS_CAPTURE",
    kind: "bool",
    default: "false",
    description:
      "DNS proxy on port 15053 (UDP and TCP) in every pod: the mesh's names from xDS, the rest upstream",
  },
  {
    flag: "dns-upstream",
    env: "DNS_UPSTREAM",
    kind: "string",
    description:
      "host:port of the resolver for names the mesh does not know (default: first nameserver of /etc/resolv.conf)",
  },
  // glibc's resolver waits 5 s per try (RES_TIMEOUT): answering SERVFAIL earlier lets it move on.
  {
    flag: "dns-upstream-timeout",
    kind: "duration",
    default: "4s",
    description: "how long a forwarded DNS query waits before the client gets SERVFAIL",
  },
];

export function parseZtunnelConfig(
  argv: readonly string[],
  env: EnvSource,
  readFile?: (path: string) => string,
): ZtunnelConfig {
  const { values: v } = parseOptions(ZTUNNEL_OPTIONS, argv, env);
  const podName = v["pod-name"] as string | undefined;
  return {
    nodeName: v["node-name"] as string,
    nodeIp: (v["node-ip"] as string | undefined) ?? (v["instance-ip"] as string | undefined) ?? "127.0.0.1",
    podName,
    podNamespace: v["pod-namespace"] as string | undefined,
    serviceAccount: v["service-account"] as string | undefined,
    controlPlane: controlPlaneConfig(v, podName !== undefined),
    clusterId: v["cluster-id"] as string,
    trustDomain: v["trust-domain"] as string,
    adminPort: v["admin-port"] as number,
    adminOnNodeIp: v["admin-on-node-ip"] as boolean,
    metricsPort: v["metrics-port"] as number,
    readinessPort: v["readiness-port"] as number,
    drainDeadlineMs: v["drain-deadline"] as number,
    handshakeTimeoutMs: v["handshake-timeout"] as number,
    connectTimeoutMs: v["connect-timeout"] as number,
    certTtlSeconds: Math.round((v["cert-ttl"] as number) / 1000),
    logLevel: v["log-level"] as LogLevel,
    accessLog: v["access-log"] as boolean,
    inpodUds: v["inpod-uds"] as string | undefined,
    reusePort: reusePortOption(v["reuse-port"] as boolean),
    dns: dnsOption(v, readFile),
  };
}

function dnsOption(v: Record<string, unknown>, readFile?: (path: string) => string): DnsConfig | undefined {
  if (!v["dns-proxy"]) return undefined;
  const text = v["dns-upstream"] as string | undefined;
  const upstream = text === undefined ? systemUpstream(readFile) : parseUpstream(text);
  if (!upstream) throw new Error(`--dns-upstream: not an IP address with an optional port: ${text}`);
  return { upstream, upstreamTimeoutMs: v["dns-upstream-timeout"] as number };
}

function reusePortOption(wanted: boolean): boolean {
  // Silently ignored by an older Node, the second process would fail with EADDRINUSE much later.
  if (wanted && !nodeHasReusePort())
    throw new Error(`--reuse-port needs Node.js 22.12 or later (this is ${process.versions.node})`);
  return wanted;
}
