// The node agent's configuration: flags, then Istio's env names where they exist, then defaults
// that match a Kubernetes node (CNI folders under /opt/cni/bin and /etc/cni/net.d). Pods and
// namespaces come from a manifests folder (local and netns modes) or the Kubernetes API
// (--kubeconfig, or in-cluster from the pod's service account): exactly one of them.

import {
  AmbientError,
  type EnvSource,
  ErrorCode,
  type LogLevel,
  type OptionSpec,
  parseOptions,
} from "@ambient/core";

/** Where pods and namespaces come from. */
export type ClusterConfig =
  | { kind: "manifests"; dir: string }
  /** `kubeconfig` undefined: in-cluster (KUBERNETES_SERVICE_HOST and the service account files). */
  | { kind: "kube"; kubeconfig: string | undefined };

export interface AgentConfig {
  nodeName: string;
  clusterId: string;
  cluster: ClusterConfig;
  cniBinDir: string;
  cniConfDir: string;
  /** Where the CNI plugin reaches us (HTTP on a unix socket). */
  cniSocket: string;
  /** Where ztunnel connects (the in-pod protocol). */
  ztunnelSocket: string;
  stateDir: string;
  excludeNamespaces: string[];
  hostProbeSnat: boolean;
  /** Redirect enrolled pods' DNS (port 53) to ztunnel's DNS proxy on 15053 (ztunnel --dns-proxy). */
  dnsCapture: boolean;
  installPlugin: boolean;
  /** GET /readyz answers here on every address (Istio's CNI agent: 8000); 0 picks a free port. */
  readinessPort: number;
  /** Copy this agent's Node.js next to the plugin: the node itself has none (see install.ts). */
  copyNode: boolean;
  /**
   * Kubernetes mode: the DaemonSet running this agent (its namespace is the pod's). At SIGTERM the
   * agent removes its plugin from the node only when this DaemonSet is gone (removal.ts).
   */
  daemonSet: { namespace: string; name: string } | undefined;
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
    description: "folder of manifests to read pods and namespaces from (local and netns modes)",
  },
  // Not bound to $KUBECONFIG here: a developer's shell usually has one set, and it must not turn a
  // --manifests agent (ambientctl up --netns) into a configuration error. clusterConfig reads it.
  {
    flag: "kubeconfig",
    kind: "string",
    description:
      "follow the Kubernetes API with this kubeconfig (else $KUBECONFIG; in a pod: its service account)",
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
    description: "comma-separated namespaces never enrolled, besides kube-system (always, as in Istio)",
  },
  {
    flag: "host-probe-snat",
    kind: "bool",
    default: "true",
    description: "SNAT the node's probes to 169.254.7.127 so pods let them through",
  },
  // Istio's chart: cni.ambient.dnsCapture. Off by default here: ztunnel must run --dns-proxy,
  // or the captured pods' DNS goes to a port nobody listens on.
  {
    flag: "dns-capture",
    env: "AMBIENT_DNS_CAPTURE",
    kind: "bool",
    default: "false",
    description: "redirect enrolled pods' DNS (UDP and TCP port 53) to ztunnel's DNS proxy on 15053",
  },
  {
    flag: "install-plugin",
    kind: "bool",
    default: "true",
    description: "copy ambient-cni into --cni-bin-dir and chain it into the node's conflist",
  },
  // Istio's istio-cni-node probes /readyz on 8000 (hostNetwork, so on the node's addresses).
  { flag: "readiness-port", kind: "int", default: "8000", description: "GET /readyz (0: a free port)" },
  // On by default: in a cluster the agent runs in a container, so the node has no Node.js at the
  // agent's path for the plugin the runtime execs there. `ambientctl up --netns` shares one host
  // and turns it off.
  {
    flag: "copy-node",
    env: "AMBIENT_CNI_COPY_NODE",
    kind: "bool",
    default: "true",
    description:
      "copy this Node.js next to the plugin in --cni-bin-dir (the node needs no Node.js of its own)",
  },
  // Istio's CNI DaemonSet's name; the namespace is the pod's own (downward API).
  {
    flag: "daemonset-name",
    env: "DAEMONSET_NAME",
    kind: "string",
    default: "istio-cni-node",
    description:
      "Kubernetes mode: this agent's DaemonSet; once it is gone, SIGTERM removes the plugin from the node",
  },
  {
    flag: "pod-namespace",
    env: "POD_NAMESPACE",
    kind: "string",
    description: "Kubernetes mode: the agent pod's namespace (its DaemonSet's)",
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
  const cluster = clusterConfig(v.manifests as string | undefined, v.kubeconfig as string | undefined, env);
  const podNamespace = v["pod-namespace"] as string | undefined;
  return {
    nodeName: v["node-name"] as string,
    clusterId: v["cluster-id"] as string,
    cluster,
    daemonSet:
      cluster.kind === "kube" && podNamespace
        ? { namespace: podNamespace, name: v["daemonset-name"] as string }
        : undefined,
    cniBinDir: v["cni-bin-dir"] as string,
    cniConfDir: v["cni-conf-dir"] as string,
    cniSocket: v["cni-socket"] as string,
    ztunnelSocket: v["ztunnel-socket"] as string,
    stateDir: v["state-dir"] as string,
    excludeNamespaces: [
      ...new Set([
        "kube-system",
        ...((v["exclude-namespaces"] as string | undefined) ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ]),
    ],
    hostProbeSnat: v["host-probe-snat"] as boolean,
    dnsCapture: v["dns-capture"] as boolean,
    installPlugin: v["install-plugin"] as boolean,
    readinessPort: v["readiness-port"] as number,
    copyNode: v["copy-node"] as boolean,
    logLevel: v["log-level"] as LogLevel,
  };
}

function clusterConfig(
  manifests: string | undefined,
  kubeconfig: string | undefined,
  env: EnvSource,
): ClusterConfig {
  const invalid = (problem: string) =>
    new AmbientError(ErrorCode.CONFIG_INVALID, `invalid configuration:\n  - ${problem}`, {
      details: { problems: [problem] },
    });
  if (manifests !== undefined && kubeconfig !== undefined)
    throw invalid("--manifests and --kubeconfig exclude each other: pods come from one place");
  if (manifests !== undefined) return { kind: "manifests", dir: manifests };
  if (kubeconfig !== undefined) return { kind: "kube", kubeconfig };
  if (env.KUBECONFIG) return { kind: "kube", kubeconfig: env.KUBECONFIG };
  if (env.KUBERNETES_SERVICE_HOST) return { kind: "kube", kubeconfig: undefined };
  throw invalid(
    "no cluster to follow: give --manifests or --kubeconfig, or run in a pod with a service account",
  );
}
