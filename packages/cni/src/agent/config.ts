// The node agent's configuration: flags, then Istio's env names where they exist, then defaults
// that match a Kubernetes node (CNI folders under /opt/cni/bin and /etc/cni/net.d).

import { type EnvSource, type LogLevel, type OptionSpec, parseOptions } from "@ambient/core";

export interface AgentConfig {
  nodeName: string;
  clusterId: string;
  /** Manifests folder to read pods and namespaces from (local/netns modes). */
  manifests: string;
  cniBinDir: string;
  cniConfDir: string;
  /** Where the CNI plugin reaches us (HTTP on a unix socket). */
  cniSocket: string;
  /** Where ztunnel connects (the in-pod protocol). */
  ztunnelSocket: string;
  stateDir: string;
  excludeNamespaces: string[];
  hostProbeSnat: boolean;
  installPlugin: boolean;
  logLevel: LogLevel;
}

export const AGENT_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "node-name",
    env: "NODE_NAME",
    kind: "string",
    required: true,
    description: "the node this agent serves",
  },
  {
    flag: "cluster-id",
    env: "CLUSTER_ID",
    kind: "string",
    default: "Kubernetes",
    description: "cluster name (part of workload uids)",
  },
  {
    flag: "manifests",
    env: "AMBIENT_MANIFESTS",
    kind: "string",
    required: true,
    description: "folder of manifests to read pods and namespaces from",
  },
  {
    flag: "cni-bin-dir",
    env: "CNI_BIN_DIR",
    kind: "string",
    default: "/opt/cni/bin",
    description: "where CNI plugins live",
  },
  {
    flag: "cni-conf-dir",
    env: "CNI_NET_DIR",
    kind: "string",
    default: "/etc/cni/net.d",
    description: "the node's CNI config folder",
  },
  {
    flag: "cni-socket",
    kind: "string",
    default: "/var/run/ambient/cni.sock",
    description: "unix socket the CNI plugin calls",
  },
  {
    flag: "ztunnel-socket",
    env: "INPOD_UDS",
    kind: "string",
    default: "/var/run/ztunnel/ztunnel.sock",
    description: "unix socket ztunnel connects to",
  },
  { flag: "state-dir", kind: "string", default: "/var/run/ambient/agent", description: "pods, annotations" },
  {
    flag: "exclude-namespaces",
    env: "EXCLUDE_NAMESPACES",
    kind: "string",
    default: "kube-system",
    description: "comma-separated namespaces never enrolled",
  },
  {
    flag: "host-probe-snat",
    kind: "bool",
    default: "true",
    description: "SNAT the node's probes to 169.254.7.127 so pods let them through",
  },
  {
    flag: "install-plugin",
    kind: "bool",
    default: "true",
    description: "copy ambient-cni into --cni-bin-dir and chain it into the node's conflist",
  },
  {
    flag: "log-level",
    env: "LOG_LEVEL",
    kind: "string",
    default: "info",
    description: "trace|debug|info|warn|error",
  },
];

export function parseAgentConfig(argv: readonly string[], env: EnvSource): AgentConfig {
  const { values: v } = parseOptions(AGENT_OPTIONS, argv, env);
  return {
    nodeName: v["node-name"] as string,
    clusterId: v["cluster-id"] as string,
    manifests: v.manifests as string,
    cniBinDir: v["cni-bin-dir"] as string,
    cniConfDir: v["cni-conf-dir"] as string,
    cniSocket: v["cni-socket"] as string,
    ztunnelSocket: v["ztunnel-socket"] as string,
    stateDir: v["state-dir"] as string,
    excludeNamespaces: (v["exclude-namespaces"] as string)
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    hostProbeSnat: v["host-probe-snat"] as boolean,
    installPlugin: v["install-plugin"] as boolean,
    logLevel: v["log-level"] as LogLevel,
  };
}
