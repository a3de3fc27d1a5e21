// ambient-controlplane's configuration: flags first, then environment (Istio's names where Istio
// has one), then defaults.

import { type EnvSource, type HostPort, type LogLevel, type OptionSpec, parseOptions } from "@ambient/core";

export interface ControlPlaneConfig {
  configDir: string;
  listen: HostPort;
  stateDir: string;
  caDir: string | undefined;
  trustDomain: string;
  clusterId: string;
  rootNamespace: string;
  logLevel: LogLevel;
}

export const CONTROLPLANE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "config-dir",
    env: "AMBIENT_CONFIG_DIR",
    kind: "string",
    required: true,
    description: "folder of Kubernetes manifests to serve",
  },
  // 15010 is istiod's plaintext xDS port; cluster mode serves TLS on 15012.
  {
    flag: "listen",
    env: "AMBIENT_LISTEN",
    kind: "hostport",
    default: "127.0.0.1:15010",
    description: "gRPC address for Delta ADS and the CA",
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

export function parseControlPlaneConfig(argv: readonly string[], env: EnvSource): ControlPlaneConfig {
  const { values } = parseOptions(CONTROLPLANE_OPTIONS, argv, env);
  return {
    configDir: values["config-dir"] as string,
    listen: values["listen"] as HostPort,
    stateDir: values["state-dir"] as string,
    caDir: values["ca-dir"] as string | undefined,
    trustDomain: values["trust-domain"] as string,
    clusterId: values["cluster-id"] as string,
    rootNamespace: values["root-namespace"] as string,
    logLevel: values["log-level"] as LogLevel,
  };
}
