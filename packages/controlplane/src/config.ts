// ambient-controlplane's configuration: flags first, then environment (Istio's names where Istio
// has one), then defaults. Two modes: a manifests folder (`--config-dir`, local) or the Kubernetes
// API (`--kubeconfig`, or in-cluster when running in a pod), each with its own listeners.

import {
  AmbientError,
  type EnvSource,
  ErrorCode,
  type HostPort,
  isIp,
  type LogLevel,
  type OptionSpec,
  parseHostPort,
  parseOptions,
} from "@ambient/core";

export interface ControlPlaneConfig {
  /** Folder mode: the manifests folder. Exactly one of `configDir` and `kube` is set. */
  configDir: string | undefined;
  kube: KubeModeConfig | undefined;
  /** Plaintext gRPC: always in folder mode; in Kubernetes mode only when `--listen` is given. */
  listen: HostPort | undefined;
  /** /ready and /metrics: Kubernetes mode's 0.0.0.0:15014 by default; folder mode only when given. */
  monitoring: HostPort | undefined;
  stateDir: string;
  caDir: string | undefined;
  trustDomain: string;
  clusterId: string;
  rootNamespace: string;
  logLevel: LogLevel;
  /** Said once at start-up: $KUBECONFIG was set but `--config-dir` chose folder mode. */
  notes: string[];
}

export interface KubeModeConfig {
  /** A kubeconfig file; undefined means in-cluster (the pod's service account). */
  kubeconfig: string | undefined;
  /** TLS gRPC (Delta ADS + CA), istiod's 15012. */
  tlsListen: HostPort;
  /** Extra DNS SANs for the serving certificate, after the `istiod` Service's names (istiodNames). */
  servingDns: string[];
  servingIps: string[];
  /** `ns/sa` accounts whose pods may ask for other identities on their node (node proxies). */
  trustedNodeAccounts: string[];
  /** Where the control plane runs (its Service `istiod` lives there). */
  namespace: string;
  /** The waypoint controller's image for waypoint pods (`<hub>/waypoint:<tag>`). */
  waypointImage: string;
}

/** istiod's Service name: proxies dial `istiod.istio-system.svc:15012` by default. */
export const SERVICE_NAME = "istiod";
const PLAINTEXT_DEFAULT = "127.0.0.1:15010";
/** istiod's TLS port for xDS and the CA. */
export const TLS_LISTEN_DEFAULT = "0.0.0.0:15012";
/** Istio's CA_TRUSTED_NODE_ACCOUNTS default: the ztunnel DaemonSet's account. */
export const TRUSTED_NODE_ACCOUNTS_DEFAULT = "istio-system/ztunnel";
export const NAMESPACE_DEFAULT = "istio-system";
/** istiod's monitoring port (`http-monitoring`): /metrics, and /ready for the readiness probe. */
const MONITORING_DEFAULT = "0.0.0.0:15014";

const KUBE_ONLY_FLAGS = [
  "tls-listen",
  "serving-dns",
  "serving-ips",
  "trusted-node-accounts",
  "namespace",
  "waypoint-image",
];
/** The image the waypoint controller gives waypoint pods unless told otherwise (the chart sets it from hub and tag). */
export const WAYPOINT_IMAGE_DEFAULT = "localhost/ambient/waypoint:latest";

export const CONTROLPLANE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "config-dir",
    env: "AMBIENT_CONFIG_DIR",
    kind: "string",
    description: "folder of Kubernetes manifests to serve (folder mode)",
  },
  // No env here: $KUBECONFIG is read by parseControlPlaneConfig, so that a shell's KUBECONFIG
  // never turns `--config-dir` into a configuration error.
  {
    flag: "kubeconfig",
    kind: "string",
    description:
      "kubeconfig of the cluster to serve (Kubernetes mode) [$KUBECONFIG]; in a pod, its service account without it",
  },
  // 15010 is istiod's plaintext xDS port.
  {
    flag: "listen",
    env: "AMBIENT_LISTEN",
    kind: "hostport",
    description: `plaintext gRPC address for Delta ADS and the CA (folder mode default ${PLAINTEXT_DEFAULT}; Kubernetes mode: off unless given)`,
  },
  {
    flag: "monitoring-listen",
    env: "AMBIENT_MONITORING_LISTEN",
    kind: "hostport",
    description: `HTTP address for /ready (readiness probe) and /metrics (Kubernetes mode default ${MONITORING_DEFAULT}; folder mode: off unless given)`,
  },
  {
    flag: "tls-listen",
    env: "AMBIENT_TLS_LISTEN",
    kind: "hostport",
    default: TLS_LISTEN_DEFAULT,
    description: "Kubernetes mode: TLS gRPC address for Delta ADS and the CA (istiod's 15012)",
  },
  {
    flag: "serving-dns",
    env: "AMBIENT_SERVING_DNS",
    kind: "string",
    description: "Kubernetes mode: extra DNS names for the serving certificate, comma-separated",
  },
  {
    flag: "serving-ips",
    env: "AMBIENT_SERVING_IPS",
    kind: "string",
    description: "Kubernetes mode: IP SANs for the serving certificate, comma-separated",
  },
  {
    flag: "trusted-node-accounts",
    env: "CA_TRUSTED_NODE_ACCOUNTS",
    kind: "string",
    default: TRUSTED_NODE_ACCOUNTS_DEFAULT,
    description: "Kubernetes mode: ns/sa accounts allowed to ask for identities of pods on their node",
  },
  {
    flag: "namespace",
    env: "POD_NAMESPACE",
    kind: "string",
    default: NAMESPACE_DEFAULT,
    description: "Kubernetes mode: the control plane's namespace (its Service istiod is there)",
  },
  {
    flag: "waypoint-image",
    env: "WAYPOINT_IMAGE",
    kind: "string",
    default: WAYPOINT_IMAGE_DEFAULT,
    description:
      "Kubernetes mode: the image of the waypoint pods the controller creates for Gateways of class istio-waypoint",
  },
  {
    flag: "state-dir",
    env: "AMBIENT_STATE_DIR",
    kind: "string",
    default: ".ambient/controlplane",
    description: "where the mesh root CA and node bootstrap tokens are kept",
  },
  {
    flag: "ca-dir",
    env: "AMBIENT_CA_DIR",
    kind: "string",
    description:
      "plugged-in CA folder in Istio's layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)",
  },
  {
    flag: "trust-domain",
    env: "TRUST_DOMAIN",
    kind: "string",
    default: "cluster.local",
    description: "SPIFFE trust domain",
  },
  // Istio's default cluster name when none is configured.
  {
    flag: "cluster-id",
    env: "CLUSTER_ID",
    kind: "string",
    default: "Kubernetes",
    description: "cluster name used in workload uids",
  },
  {
    flag: "root-namespace",
    env: "ROOT_NAMESPACE",
    kind: "string",
    default: "istio-system",
    description: "mesh-wide policy namespace",
  },
  {
    flag: "log-level",
    env: "LOG_LEVEL",
    kind: "string",
    default: "info",
    description: "trace|debug|info|warn|error",
  },
];

const DNS_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseControlPlaneConfig(argv: readonly string[], env: EnvSource): ControlPlaneConfig {
  const { values: v } = parseOptions(CONTROLPLANE_OPTIONS, argv, env);
  const problems: string[] = [];
  const notes: string[] = [];
  const given = (flag: string) => argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  const configDir = v["config-dir"] as string | undefined;
  const kubeconfigFlag = v.kubeconfig as string | undefined;
  const kubeconfigEnv = env.KUBECONFIG || undefined;

  let kube: KubeModeConfig | undefined;
  if (configDir !== undefined) {
    if (kubeconfigFlag !== undefined)
      problems.push("--config-dir and --kubeconfig together: serve a folder or a cluster, not both");
    else if (kubeconfigEnv) notes.push("$KUBECONFIG is set but --config-dir chose folder mode");
    for (const flag of KUBE_ONLY_FLAGS)
      if (given(flag))
        problems.push(`--${flag} applies to Kubernetes mode only (--config-dir chose folder mode)`);
  } else if (kubeconfigFlag !== undefined || kubeconfigEnv || env.KUBERNETES_SERVICE_HOST) {
    kube = {
      kubeconfig: kubeconfigFlag ?? kubeconfigEnv,
      tlsListen: v["tls-listen"] as HostPort,
      servingDns: list(v["serving-dns"]),
      servingIps: list(v["serving-ips"]),
      trustedNodeAccounts: list(v["trusted-node-accounts"]),
      namespace: v.namespace as string,
      waypointImage: v["waypoint-image"] as string,
    };
    for (const name of [...kube.servingDns, ...istiodNames(kube.namespace)])
      if (!DNS_NAME_RE.test(name)) problems.push(`--serving-dns: "${name}" is not a DNS name`);
    for (const ip of kube.servingIps) if (!isIp(ip)) problems.push(`--serving-ips: "${ip}" is not an IP`);
    for (const account of kube.trustedNodeAccounts) {
      const [ns, sa, extra] = account.split("/");
      if (extra !== undefined || !ns || !sa || !DNS_LABEL_RE.test(ns) || !DNS_NAME_RE.test(sa))
        problems.push(`--trusted-node-accounts: "${account}" is not <namespace>/<service account>`);
    }
  } else {
    problems.push(
      "nothing to serve: --config-dir (or $AMBIENT_CONFIG_DIR) for a folder, --kubeconfig (or $KUBECONFIG) for a cluster, or run in a pod (in-cluster service account)",
    );
  }
  if (problems.length > 0) {
    throw new AmbientError(
      ErrorCode.CONFIG_INVALID,
      `invalid configuration:\n  - ${problems.join("\n  - ")}`,
      {
        details: { problems },
      },
    );
  }
  const listen = (v.listen as HostPort | undefined) ?? (kube ? undefined : parseHostPort(PLAINTEXT_DEFAULT));
  const monitoring =
    (v["monitoring-listen"] as HostPort | undefined) ??
    (kube ? parseHostPort(MONITORING_DEFAULT) : undefined);
  return {
    configDir,
    kube,
    listen,
    monitoring,
    stateDir: v["state-dir"] as string,
    caDir: v["ca-dir"] as string | undefined,
    trustDomain: v["trust-domain"] as string,
    clusterId: v["cluster-id"] as string,
    rootNamespace: v["root-namespace"] as string,
    logLevel: v["log-level"] as LogLevel,
    notes,
  };
}

/** The names a proxy may dial the `istiod` Service by, as istiod's own DNS certificate carries them. */
export function istiodNames(namespace: string): string[] {
  const svc = `${SERVICE_NAME}.${namespace}`;
  return [`${svc}.svc`, `${svc}.svc.cluster.local`, svc, SERVICE_NAME];
}

function list(value: unknown): string[] {
  if (typeof value !== "string") return [];
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
