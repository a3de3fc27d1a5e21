// Pod sandboxes: a pod is a named netns wired by CNI exactly as a kubelet's runtime would do it
// (the node's conflist as it is at that moment, so a chained ambient-cni sees the ADD), plus an
// /etc/netns/<name>/hosts file so `ip netns exec <pod> curl http://svc.ns.svc.cluster.local/` works.

import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type CniResult, CniRuntime, firstIpv4, k8sArgs, type RuntimeConf } from "./cni-runtime.js";
import { NetnsErrorCode, netnsError } from "./errors.js";
import { ip } from "./exec.js";
import { checkName, ETC_NETNS_DIR, netnsPath, podNetnsName } from "./names.js";
import { loadNodeNetwork } from "./node-conflist.js";
import type { Topology, TopologyNode } from "./topology.js";

export interface PodRef {
  namespace: string;
  name: string;
  /** K8S_POD_UID in CNI_ARGS when set. */
  uid?: string;
}

export interface PodNetns {
  namespace: string;
  name: string;
  uid?: string;
  node: string;
  netns: string;
  netnsPath: string;
  /** The pod's IPv4 address as the CNI result gave it. */
  ip: string;
  /** The sandbox id CNI saw (CNI_CONTAINERID, K8S_POD_INFRA_CONTAINER_ID). */
  containerId: string;
  /** The final result of the ADD (after every chained plugin). */
  result: CniResult;
  /** The network (conflist `name`) the ADD used: DEL falls back to its cached config. */
  network: string;
}

export interface PodCniOptions {
  /** Environment the plugins inherit (default: this process's). */
  baseEnv?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** The runtime for `node`: plugins run in the node netns, CNI_PATH = agent's bin dir + /usr/lib/cni. */
export function cniRuntimeFor(topology: Topology, node: TopologyNode, opts: PodCniOptions = {}): CniRuntime {
  return new CniRuntime({
    path: topology.cniPath(node),
    cacheDir: node.cniCacheDir,
    pluginNetns: node.netnsPath,
    ...(opts.baseEnv && { baseEnv: opts.baseEnv }),
    ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
  });
}

/**
 * Creates the pod's netns and runs CNI ADD for it on `node`. On failure the runtime cleans up as
 * containerd does: CNI DEL (best effort), then the netns goes; the ADD's error is what is thrown.
 */
export async function createPodNetns(
  topology: Topology,
  nodeOrName: TopologyNode | string,
  pod: PodRef,
  opts: PodCniOptions = {},
): Promise<PodNetns> {
  const node = typeof nodeOrName === "string" ? topology.node(nodeOrName) : nodeOrName;
  checkName("namespace", pod.namespace);
  checkName("pod name", pod.name);
  const netns = podNetnsName(topology.prefix, pod.namespace, pod.name);
  const path = netnsPath(netns);
  // containerd's sandbox ids: 64 hex digits.
  const containerId = randomBytes(32).toString("hex");
  const rt = runtimeConf(pod, containerId, path);

  await ip("netns", "add", netns);
  const runtime = cniRuntimeFor(topology, node, opts);
  try {
    await ip("-n", netns, "link", "set", "lo", "up");
    const { list } = await loadNodeNetwork(node.confDir);
    let result: CniResult;
    try {
      result = await runtime.addNetworkList(list, rt);
    } catch (err) {
      await runtime.delNetworkList(list, rt).catch(() => {});
      throw err;
    }
    const podIp = firstIpv4(result);
    if (!podIp) {
      await runtime.delNetworkList(list, rt).catch(() => {});
      const why = `CNI ADD for ${pod.namespace}/${pod.name} returned no IPv4 address`;
      throw netnsError(NetnsErrorCode.CNI_PLUGIN_FAILED, why, { result });
    }
    return {
      namespace: pod.namespace,
      name: pod.name,
      ...(pod.uid && { uid: pod.uid }),
      node: node.name,
      netns,
      netnsPath: path,
      ip: podIp,
      containerId,
      result,
      network: list.name,
    };
  } catch (err) {
    await ip("netns", "del", netns).catch(() => {});
    throw err;
  }
}

/**
 * CNI DEL (the node's current conflist, as containerd does; the cached one if the dir is empty),
 * then the netns and its hosts file go. A DEL failure is thrown after the netns is removed anyway:
 * the caller learns it, and nothing is left behind.
 */
export async function deletePod(topology: Topology, pod: PodNetns, opts: PodCniOptions = {}): Promise<void> {
  const node = topology.node(pod.node);
  const runtime = cniRuntimeFor(topology, node, opts);
  const rt = runtimeConf(pod, pod.containerId, pod.netnsPath);
  let delError: unknown;
  try {
    const list = await loadNodeNetwork(node.confDir)
      .then((n) => n.list)
      .catch(async (err) => {
        const cached = await runtime.cachedResult(pod.network, rt).catch(() => undefined);
        if (cached) return cached.list;
        throw err;
      });
    await runtime.delNetworkList(list, rt);
  } catch (err) {
    delError = err;
  }
  await ip("netns", "del", pod.netns).catch((err) => {
    // Already gone is what we wanted.
    if (!/No such file/.test((err as Error).message)) delError ??= err;
  });
  await removeHostsFile(pod.netns);
  if (delError) throw delError;
}

/** CNI CHECK for a running pod (the node's current conflist, the cached ADD result). */
export async function checkPod(topology: Topology, pod: PodNetns, opts: PodCniOptions = {}): Promise<void> {
  const node = topology.node(pod.node);
  const { list } = await loadNodeNetwork(node.confDir);
  await cniRuntimeFor(topology, node, opts).checkNetworkList(
    list,
    runtimeConf(pod, pod.containerId, pod.netnsPath),
  );
}

function runtimeConf(pod: PodRef, containerId: string, netns: string): RuntimeConf {
  return {
    containerId,
    netns,
    ifName: "eth0",
    args: k8sArgs({
      namespace: pod.namespace,
      name: pod.name,
      containerId,
      ...(pod.uid && { uid: pod.uid }),
    }),
  };
}

export interface HostsEntry {
  ip: string;
  names: readonly string[];
}

const LOCALHOST_LINES = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];

/**
 * Writes /etc/netns/<netns>/hosts (atomically: a curl may be resolving right now). `ip netns exec`
 * mounts it over /etc/hosts; nsenter does not, so only programs started that way see it.
 */
export async function writeHostsFile(netnsName: string, entries: readonly HostsEntry[]): Promise<string> {
  checkName("netns name", netnsName);
  const dir = join(ETC_NETNS_DIR, netnsName);
  await mkdir(dir, { recursive: true });
  const lines = [
    "# Written by ambient's netns harness: service names of the mesh.",
    ...LOCALHOST_LINES,
    ...entries.filter((e) => e.names.length > 0).map((e) => `${e.ip}\t${e.names.join(" ")}`),
  ];
  const file = join(dir, "hosts");
  // The temporary file stays outside the netns's dir: `ip netns exec` bind-mounts every file there.
  const tmp = join(ETC_NETNS_DIR, `.${netnsName}.hosts.tmp`);
  await writeFile(tmp, `${lines.join("\n")}\n`);
  await rename(tmp, file);
  return file;
}

/** Where the pods' resolv.conf points: Kubernetes' usual kube-dns ClusterIP. Capture redirects it. */
export const POD_NAMESERVER = "10.96.0.10";

/**
 * With the DNS proxy: /etc/netns/<netns>/resolv.conf as the kubelet writes a pod's (ClusterFirst):
 * the cluster's nameserver and the namespace's search list, so an unmodified resolver in the pod
 * asks port 53, which capture sends to ztunnel's 15053.
 */
export async function writeResolvConf(netnsName: string, namespace: string): Promise<string> {
  checkName("netns name", netnsName);
  const dir = join(ETC_NETNS_DIR, netnsName);
  await mkdir(dir, { recursive: true });
  const text = [
    "# Written by ambient's netns harness: DNS through ztunnel's DNS proxy.",
    `nameserver ${POD_NAMESERVER}`,
    `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local`,
    "options ndots:5",
    "",
  ].join("\n");
  const file = join(dir, "resolv.conf");
  const tmp = join(ETC_NETNS_DIR, `.${netnsName}.resolv.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, file);
  return file;
}

export async function removeHostsFile(netnsName: string): Promise<void> {
  checkName("netns name", netnsName);
  await rm(join(ETC_NETNS_DIR, netnsName), { recursive: true, force: true });
}
