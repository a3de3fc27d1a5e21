// ztunnel's configuration: flags first, then Istio's environment names (NODE_NAME, XDS_ADDRESS,
// CA_ADDRESS, ...), then defaults. One function, env injected, every problem reported at once.

import { type EnvSource, type LogLevel, type OptionSpec, parseOptions } from "@ambient/core";

export interface ZtunnelConfig {
  nodeName: string;
  /** The node's own address: admin (local mode), metrics and readiness listen here. */
  nodeIp: string;
  xdsAddress: string;
  caAddress: string;
  /** File holding the node's bootstrap token (local mode); re-read on every CA/xDS call. */
  tokenFile: string | undefined;
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
    default: "127.0.0.1",
    description: "address of this node (admin in local mode, metrics, readiness)",
  },
  {
    flag: "xds-address",
    env: "XDS_ADDRESS",
    kind: "string",
    default: "127.0.0.1:15010",
    description: "control plane Delta ADS address",
  },
  {
    flag: "ca-address",
    env: "CA_ADDRESS",
    kind: "string",
    description: "certificate service address (defaults to the xDS address)",
  },
  {
    flag: "token-file",
    env: "AMBIENT_NODE_TOKEN_FILE",
    kind: "string",
    description: "node bootstrap token (local mode)",
  },
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
];

export function parseZtunnelConfig(argv: readonly string[], env: EnvSource): ZtunnelConfig {
  const { values: v } = parseOptions(ZTUNNEL_OPTIONS, argv, env);
  const xdsAddress = v["xds-address"] as string;
  return {
    nodeName: v["node-name"] as string,
    nodeIp: v["node-ip"] as string,
    xdsAddress,
    caAddress: (v["ca-address"] as string | undefined) ?? xdsAddress,
    tokenFile: v["token-file"] as string | undefined,
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
  };
}
