// Where a proxy finds its control plane and how it proves who it is, as Istio's proxies are told in
// a pod (XDS_ADDRESS, CA_ADDRESS, the projected token, the istio-ca-root-cert ConfigMap). Shared
// by ztunnel and the waypoint so both read the same names with the same defaults.

import { AmbientError, ErrorCode, type OptionSpec, type OptionValue, parseHostPort } from "@ambient/core";

/** Istio's charts point proxies at istiod's TLS port through its Service. */
export const ISTIOD_ADDRESS = "istiod.istio-system.svc:15012";
/** Local mode: the control plane on loopback, plaintext. */
export const LOCAL_CONTROL_PLANE_ADDRESS = "127.0.0.1:15010";
/** The projected service-account token (audience istio-ca) Istio's charts mount. */
export const POD_TOKEN_FILE = "/var/run/secrets/tokens/istio-token";
/** The istio-ca-root-cert ConfigMap as Istio's charts mount it. */
export const POD_ROOT_CERT_FILE = "/var/run/secrets/istio/root-cert.pem";
/** istiod serves TLS here; a client dialling it without a root to verify against is misconfigured. */
const TLS_PORT = 15012;

export interface ControlPlaneConfig {
  xdsAddress: string;
  caAddress: string;
  /** Bearer token sent to xDS and the CA, re-read on every call (a rotated token is used next). */
  tokenFile: string | undefined;
  /** The root the control plane's serving certificate chains to; re-read on every (re)connect. */
  rootCertFile: string | undefined;
  /** The name its certificate must carry when not the address's host (an IP it does not name). */
  san: string | undefined;
  /** TLS when a root is configured or an address is on 15012; plaintext otherwise (local mode). */
  tls: boolean;
}

export const CONTROL_PLANE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "xds-address",
    env: "XDS_ADDRESS",
    kind: "string",
    description: `control plane Delta ADS address (default ${ISTIOD_ADDRESS} in a pod, else ${LOCAL_CONTROL_PLANE_ADDRESS})`,
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
    description: `bearer token for xDS and the CA (default ${POD_TOKEN_FILE} in a pod; local mode: the node token)`,
  },
  {
    flag: "ca-root-cert",
    env: "CA_ROOT_CERT",
    kind: "string",
    description: `root certificate that verifies the control plane; TLS when set (default ${POD_ROOT_CERT_FILE} in a pod)`,
  },
  {
    flag: "control-plane-san",
    env: "CONTROL_PLANE_SAN",
    kind: "string",
    description:
      "name the control plane's certificate must carry, when the address is an IP it does not name",
  },
];

/**
 * The control plane settings from parsed CONTROL_PLANE_OPTIONS. `inPod` (POD_NAME is set) turns on
 * Istio's in-pod defaults. Throws AMB_CONFIG_INVALID listing every problem.
 */
export function controlPlaneConfig(v: Record<string, OptionValue>, inPod: boolean): ControlPlaneConfig {
  const xdsAddress =
    (v["xds-address"] as string | undefined) ?? (inPod ? ISTIOD_ADDRESS : LOCAL_CONTROL_PLANE_ADDRESS);
  const caAddress = (v["ca-address"] as string | undefined) ?? xdsAddress;
  const tokenFile = (v["token-file"] as string | undefined) ?? (inPod ? POD_TOKEN_FILE : undefined);
  const rootCertFile = (v["ca-root-cert"] as string | undefined) ?? (inPod ? POD_ROOT_CERT_FILE : undefined);
  const san = v["control-plane-san"] as string | undefined;
  const problems: string[] = [];
  const ports: number[] = [];
  for (const [flag, address] of [
    ["--xds-address", xdsAddress],
    ["--ca-address", caAddress],
  ] as const) {
    const hp = parseHostPort(address);
    if (!hp || hp.host === "0.0.0.0") problems.push(`${flag}: "${address}" is not HOST:PORT`);
    else ports.push(hp.port);
  }
  const tls = rootCertFile !== undefined || ports.includes(TLS_PORT);
  if (tls && rootCertFile === undefined)
    problems.push(
      `port ${TLS_PORT} is the control plane's TLS port: give --ca-root-cert (or $CA_ROOT_CERT) to verify it`,
    );
  if (san !== undefined && !tls)
    problems.push("--control-plane-san applies to TLS only: give --ca-root-cert too");
  if (problems.length > 0)
    throw new AmbientError(
      ErrorCode.CONFIG_INVALID,
      `invalid configuration:\n  - ${problems.join("\n  - ")}`,
      {
        details: { problems },
      },
    );
  return { xdsAddress, caAddress, tokenFile, rootCertFile, san, tls };
}
