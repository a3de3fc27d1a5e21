// The waypoint's configuration: which Gateway it is, where it listens, where the control plane is.
// Flags first, then environment (Istio's names where Istio has one), then defaults. With POD_NAME
// set it runs as in a cluster: istiod over TLS, the projected token, its own identity from the CA.

import { type EnvSource, type LogLevel, type OptionSpec, parseOptions } from "@ambient/core";
import { CONTROL_PLANE_OPTIONS, type ControlPlaneConfig, controlPlaneConfig } from "@ambient/dataplane";

export interface WaypointConfig {
  /** The Gateway (class istio-waypoint) this process serves. */
  name: string;
  namespace: string;
  /** The waypoint pod's IP: HBONE on ip:15008, metrics/readiness on ip:15020/15021. */
  ip: string;
  /** Admin (/config_dump, /logging, /quitquitquit) port, on 127.0.0.1 unless adminOnPodIp. */
  adminPort: number;
  /**
   * Admin on the pod IP instead: local mode only, where every pod shares the host's loopback (so
   * 127.0.0.1:15000 fits one waypoint) and a pod IP is a 127.x address no other host reaches.
   */
  adminOnPodIp: boolean;
  /** How long protocol detection waits for a client that has not sent enough to decide. */
  protocolDetectionTimeoutMs: number;
  serviceAccount: string;
  nodeName: string;
  /**
   * The waypoint's pod (Kubernetes mode). In a pod it asks the CA for its own identity with its
   * own token; without one (local mode) it holds the node's token and asks as the node would.
   */
  podName: string | undefined;
  controlPlane: ControlPlaneConfig;
  clusterId: string;
  trustDomain: string;
  logLevel: LogLevel;
  accessLog: boolean;
  drainDeadlineMs: number;
  /**
   * An ingress gateway instead of a waypoint: listeners on the ports of the Gateways its pod
   * serves, no HBONE listener. `pod` is the pod whose labels select those Gateways.
   */
  ingress: { pod: string; rootNamespace: string } | undefined;
}

export const WAYPOINT_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "name",
    env: "GATEWAY_NAME",
    kind: "string",
    required: true,
    description: "the waypoint Gateway's name",
  },
  {
    flag: "namespace",
    env: "POD_NAMESPACE",
    kind: "string",
    required: true,
    description: "the Gateway's namespace",
  },
  { flag: "ip", env: "INSTANCE_IP", kind: "string", required: true, description: "this waypoint's pod IP" },
  {
    flag: "service-account",
    env: "SERVICE_ACCOUNT",
    kind: "string",
    description: "identity (defaults to the Gateway name, as Istio's waypoints)",
  },
  {
    flag: "node-name",
    env: "NODE_NAME",
    kind: "string",
    default: "",
    description: "node the waypoint runs on",
  },
  { flag: "pod-name", env: "POD_NAME", kind: "string", description: "this waypoint's pod (Kubernetes mode)" },
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
    flag: "log-level",
    env: "LOG_LEVEL",
    kind: "string",
    default: "info",
    description: "trace|debug|info|warn|error",
  },
  { flag: "access-log", kind: "bool", default: "true", description: "one JSON line per request" },
  {
    flag: "admin-port",
    kind: "int",
    default: "15000",
    description: "admin: /config_dump, POST /logging, POST /quitquitquit (on 127.0.0.1)",
  },
  {
    flag: "admin-on-pod-ip",
    kind: "bool",
    default: "false",
    description: "bind admin on the pod IP instead of 127.0.0.1 (local mode, where pods share loopback)",
  },
  // SNIFF_TIMEOUT_MS (proxy/sniff.ts) says why 1 s; Istio's meshConfig.protocolDetectionTimeout.
  {
    flag: "protocol-detection-timeout",
    env: "PROTOCOL_DETECTION_TIMEOUT",
    kind: "duration",
    default: "1s",
    description:
      "wait this long for a client's first bytes before treating the tunnel as opaque TCP (0s: no limit)",
  },
  {
    flag: "ingress",
    env: "INGRESS_GATEWAY",
    kind: "bool",
    default: "false",
    description:
      "run as an ingress gateway: serve the Istio Gateways whose selector matches this pod and the class-istio Gateway it is labelled for",
  },
  {
    flag: "ingress-pod",
    kind: "string",
    description: "the gateway's pod, whose labels select its Gateways (default: --pod-name, else --name)",
  },
  {
    flag: "root-namespace",
    env: "ROOT_NAMESPACE",
    kind: "string",
    default: "istio-system",
    description: "the mesh's root namespace: its selector policies apply to an ingress gateway too",
  },
  {
    flag: "drain-deadline",
    env: "DRAIN_DEADLINE",
    kind: "duration",
    default: "25s",
    description: "how long SIGTERM waits for open requests",
  },
];

export function parseWaypointConfig(argv: readonly string[], env: EnvSource): WaypointConfig {
  const { values: v } = parseOptions(WAYPOINT_OPTIONS, argv, env);
  const podName = v["pod-name"] as string | undefined;
  return {
    name: v["name"] as string,
    namespace: v["namespace"] as string,
    ip: v["ip"] as string,
    serviceAccount: (v["service-account"] as string | undefined) ?? (v["name"] as string),
    nodeName: v["node-name"] as string,
    podName,
    controlPlane: controlPlaneConfig(v, podName !== undefined),
    clusterId: v["cluster-id"] as string,
    trustDomain: v["trust-domain"] as string,
    logLevel: v["log-level"] as LogLevel,
    accessLog: v["access-log"] as boolean,
    adminPort: v["admin-port"] as number,
    adminOnPodIp: v["admin-on-pod-ip"] as boolean,
    protocolDetectionTimeoutMs: v["protocol-detection-timeout"] as number,
    drainDeadlineMs: v["drain-deadline"] as number,
    ingress: v["ingress"]
      ? {
          pod: (v["ingress-pod"] as string | undefined) ?? podName ?? (v["name"] as string),
          rootNamespace: v["root-namespace"] as string,
        }
      : undefined,
  };
}
