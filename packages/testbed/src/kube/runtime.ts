// The container runtime seam of the kubelet stand-in: a pod's network (its sandbox and IP) and its
// containers. Our "images" name what a container runs: the mesh's own components, or any other
// image, which becomes an echo app on the container's ports. Two runtimes: loopback (in-process,
// loopback-runtime.ts) and network namespaces (real processes and the CNI chain, netns-runtime.ts).

import type { Pod } from "@ambient/kube";

/** The mesh's images; any other image runs as an echo app answering on its container ports. */
export const IMAGES = {
  controlplane: "ambient/controlplane",
  ztunnel: "ambient/ztunnel",
  // deploy/images builds localhost/ambient/cni (the agent and the plugin it installs).
  cni: "ambient/cni",
  waypoint: "ambient/waypoint",
} as const;

export type ImageKind = keyof typeof IMAGES | "app";

/** What an image reference runs (`ambient/ztunnel:dev` and `localhost/ambient/ztunnel` are ztunnel). */
export function imageKind(image: string | undefined): ImageKind {
  const repo = (image ?? "").replace(/[:@].*$/, "");
  for (const [kind, name] of Object.entries(IMAGES)) {
    if (repo === name || repo.endsWith(`/${name}`)) return kind as ImageKind;
  }
  return "app";
}

export interface Sandbox {
  ip: string;
  hostNetwork: boolean;
  /** The pod's network namespace (netns runtime), for `ip netns exec`. */
  netns?: string;
}

/** A container as the kubelet resolved it: env with the downward API filled in, paths on the host. */
export interface ContainerSpec {
  name: string;
  image: ImageKind;
  args: string[];
  env: Record<string, string>;
  ports: number[];
  /** The host path of a file the image reads at a fixed path in the container (undefined: not mounted). */
  file(containerPath: string): string | undefined;
  /** The pod's service-account kubeconfig (what in-cluster config would read). */
  kubeconfig: string;
  /** Where the container's output goes (netns runtime). */
  logFile: string;
}

export interface RunningContainer {
  /** The readiness probe. */
  ready(): boolean;
  /** Settles when the container exits by itself. */
  readonly exited: Promise<unknown>;
  /** SIGTERM, then SIGKILL once `graceMs` (the pod's deletion grace period) has passed. */
  stop(graceMs?: number): Promise<void>;
}

export interface ContainerRuntime {
  /** The pod's network: its IP (the node's own for hostNetwork pods). */
  runSandbox(pod: Pod, node: string): Promise<Sandbox>;
  removeSandbox(pod: Pod, sandbox: Sandbox): Promise<void>;
  start(pod: Pod, sandbox: Sandbox, container: ContainerSpec): Promise<RunningContainer>;
}

/** The files Istio's proxy images read in a pod (the chart's projected token and root ConfigMap). */
export const PROXY_TOKEN_FILE = "/var/run/secrets/tokens/istio-token";
export const PROXY_ROOT_CERT_FILE = "/var/run/secrets/istio/root-cert.pem";

/** The proxy's token and root, where the pod's volumes put them on this host. */
export function proxyFiles(c: ContainerSpec): Record<string, string> {
  const token = c.file(PROXY_TOKEN_FILE);
  const root = c.file(PROXY_ROOT_CERT_FILE);
  return {
    ...(token ? { AMBIENT_NODE_TOKEN_FILE: token } : {}),
    ...(root ? { CA_ROOT_CERT: root } : {}),
  };
}

/**
 * The CNI agent image's own paths (its defaults: the plugin's socket and the agent's state, under
 * the chart's /var/run/ambient hostPath), given as flags where the pod mounts them: our processes
 * share the host's filesystem, so a default path would be the same file for every node's agent.
 */
const AGENT_DEFAULTS = {
  "--cni-socket": "/var/run/ambient/cni.sock",
  "--state-dir": "/var/run/ambient/agent",
};

export function agentPathArgs(c: ContainerSpec): string[] {
  const out: string[] = [];
  for (const [flag, path] of Object.entries(AGENT_DEFAULTS)) {
    const host = c.file(path);
    if (host && !c.args.some((a) => a === flag || a.startsWith(`${flag}=`))) out.push(flag, host);
  }
  return out;
}
