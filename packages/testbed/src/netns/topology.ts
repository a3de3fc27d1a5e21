// The machines of a netns mesh: a "switch" namespace whose bridge joins one namespace per node,
// each node with its own pod CIDR routed to the others, as a flat L3 cluster network would. Pods
// (./pods.ts) hang off each node's cni0 bridge, which the reference CNI bridge plugin creates.
// Everything is named with a prefix and torn down by destroy(), or by cleanupStale() after a crash.

import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { NetnsErrorCode, netnsError } from "./errors.js";
import { ip, run } from "./exec.js";
import {
  checkName,
  checkPrefix,
  DEFAULT_PREFIX,
  ETC_NETNS_DIR,
  MAX_IFNAME,
  MAX_NODES,
  NODE_PREFIX_LEN,
  netnsPath,
  nodeIp,
  nodeNetnsName,
  podCidr,
  podGateway,
  switchNetnsName,
} from "./names.js";

export interface TopologyOptions {
  nodes: readonly { name: string }[];
  /**
   * Prefix of every netns (and /etc/netns dir) created; tests running in parallel use their own.
   * Cleanup removes everything starting with it, so one run's prefix must not start another's.
   */
  prefix?: string;
  /** CNI config, plugin install dir, IPAM and result cache per node. Default /run/<prefix>netns. */
  stateDir?: string;
  /** Remove leftovers with this prefix from a crashed run first. Default true. */
  cleanStale?: boolean;
}

export interface TopologyNode {
  name: string;
  /** 1-based position in `nodes`: it picks the node's addresses. */
  index: number;
  netns: string;
  netnsPath: string;
  /** The node's address on the node link (eth0), e.g. 198.18.0.11. */
  ip: string;
  /** e.g. 198.19.1.0/24; host-local allocates pod IPs from it. */
  podCidr: string;
  /** cni0's address in the node netns, the pods' default gateway, e.g. 198.19.1.1. */
  gateway: string;
  /** The node's side of the node link, inside its netns: capture inter-node traffic here. */
  linkIfName: string;
  /** The same link's end on the switch bridge (in the switch netns). */
  switchIfName: string;
  /** The node's CNI config directory: 10-ambient-bridge.conflist, plus whatever the agent chains. */
  confDir: string;
  /** Where the agent installs ambient-cni; first in CNI_PATH, before /usr/lib/cni. */
  cniBinDir: string;
  /** libcni's cache of ADD results (used by DEL and CHECK). */
  cniCacheDir: string;
  /** host-local's allocation records. */
  ipamDir: string;
}

/** The reference plugins (Debian containernetworking-plugins). */
export const SYSTEM_CNI_BIN_DIR = "/usr/lib/cni";

const BRIDGE = "br0";
const NODE_LINK_IF = "eth0";

export class Topology {
  readonly switchNetns: string;
  readonly switchNetnsPath: string;
  readonly bridge = BRIDGE;
  private destroyed = false;

  constructor(
    readonly prefix: string,
    readonly stateDir: string,
    readonly nodes: readonly TopologyNode[],
  ) {
    this.switchNetns = switchNetnsName(prefix);
    this.switchNetnsPath = netnsPath(this.switchNetns);
  }

  node(name: string): TopologyNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) {
      throw netnsError(NetnsErrorCode.NAME_INVALID, `node ${name} is not in the topology`, {
        node: name,
        nodes: this.nodes.map((x) => x.name),
      });
    }
    return n;
  }

  /** The CNI_PATH a runtime on `node` uses: the agent's install dir first, then the reference plugins. */
  cniPath(node: TopologyNode): string[] {
    return [node.cniBinDir, SYSTEM_CNI_BIN_DIR];
  }

  /**
   * Removes everything this topology created, found by its prefix so that nothing made through it
   * (or by hand with its names) is missed: processes still inside its namespaces (SIGKILL), every
   * <prefix>* netns (their veths go with them), /etc/netns/<prefix>* and the state dir.
   * Idempotent; keeps going past failures and reports them all at the end.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await cleanupStale(this.prefix, this.stateDir);
    this.destroyed = true;
  }
}

export function defaultStateDir(prefix: string): string {
  return `/run/${prefix}netns`;
}

export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  checkPrefix(prefix);
  if (opts.nodes.length === 0 || opts.nodes.length > MAX_NODES) {
    throw netnsError(
      NetnsErrorCode.NAME_INVALID,
      `a topology needs 1 to ${MAX_NODES} nodes, got ${opts.nodes.length}`,
    );
  }
  const seen = new Set<string>();
  for (const { name } of opts.nodes) {
    checkName("node name", name);
    if (seen.has(name))
      throw netnsError(NetnsErrorCode.NAME_INVALID, `node ${name} is listed twice`, { node: name });
    seen.add(name);
  }
  const stateDir = opts.stateDir ?? defaultStateDir(prefix);
  if (opts.cleanStale ?? true) await cleanupStale(prefix, stateDir);

  const nodes = opts.nodes.map(({ name }, i): TopologyNode => {
    const index = i + 1;
    const dir = join(stateDir, "nodes", name);
    const netns = nodeNetnsName(prefix, name);
    return {
      name,
      index,
      netns,
      netnsPath: netnsPath(netns),
      ip: nodeIp(index),
      podCidr: podCidr(index),
      gateway: podGateway(index),
      linkIfName: NODE_LINK_IF,
      switchIfName: `veth-n${index}`,
      confDir: join(dir, "net.d"),
      cniBinDir: join(dir, "bin"),
      cniCacheDir: join(dir, "cache"),
      ipamDir: join(dir, "ipam"),
    };
  });
  const topology = new Topology(prefix, stateDir, nodes);
  try {
    await buildSwitch(topology);
    for (const node of nodes) await buildNode(topology, node);
    for (const node of nodes) {
      for (const other of nodes) {
        if (other !== node) await ip("-n", node.netns, "route", "add", other.podCidr, "via", other.ip);
      }
    }
  } catch (err) {
    await topology.destroy().catch(() => {});
    throw err;
  }
  return topology;
}

async function buildSwitch(t: Topology): Promise<void> {
  await ip("netns", "add", t.switchNetns);
  await ip("-n", t.switchNetns, "link", "set", "lo", "up");
  await ip("-n", t.switchNetns, "link", "add", BRIDGE, "type", "bridge");
  await ip("-n", t.switchNetns, "link", "set", BRIDGE, "up");
}

async function buildNode(t: Topology, node: TopologyNode): Promise<void> {
  if (node.switchIfName.length > MAX_IFNAME) {
    throw netnsError(NetnsErrorCode.NAME_INVALID, `interface name ${node.switchIfName} is too long`);
  }
  for (const dir of [node.confDir, node.cniBinDir, node.cniCacheDir, node.ipamDir]) {
    await mkdir(dir, { recursive: true });
  }
  await ip("netns", "add", node.netns);
  await ip("-n", node.netns, "link", "set", "lo", "up");
  // Created from inside the node netns with the peer placed straight into the switch: no
  // interface ever exists in the host namespace, so parallel topologies cannot collide there.
  await ip(
    "-n",
    node.netns,
    "link",
    "add",
    NODE_LINK_IF,
    "type",
    "veth",
    "peer",
    "name",
    node.switchIfName,
    "netns",
    t.switchNetns,
  );
  await ip("-n", t.switchNetns, "link", "set", node.switchIfName, "master", BRIDGE);
  await ip("-n", t.switchNetns, "link", "set", node.switchIfName, "up");
  await ip("-n", node.netns, "addr", "add", `${node.ip}/${NODE_PREFIX_LEN}`, "dev", NODE_LINK_IF);
  await ip("-n", node.netns, "link", "set", NODE_LINK_IF, "up");
  // The node routes between its pods (cni0) and the other nodes (eth0). /proc/sys/net is per
  // netns for whoever opens it, so sysctl under nsenter sets the node's own switch.
  await run("nsenter", [`--net=${node.netnsPath}`, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
}

/** Names of all named network namespaces (`ip netns list` prints "name (id: N)"). */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await ip("netns", "list");
  return stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.length > 0);
}

/**
 * Removes what a previous run with `prefix` left behind: every netns whose name starts with it
 * (after killing the processes inside), /etc/netns/<prefix>* and `stateDir` when given.
 * Returns the netns names it removed.
 */
export async function cleanupStale(prefix: string = DEFAULT_PREFIX, stateDir?: string): Promise<string[]> {
  checkPrefix(prefix);
  const failures: string[] = [];
  const stale = (await listNetns()).filter((n) => n.startsWith(prefix));
  await removeNetns(stale, failures);
  const etc = await readdir(ETC_NETNS_DIR).catch(() => [] as string[]);
  for (const name of etc) {
    // ".<netns>.hosts.tmp": a hosts file write that was cut short (pods.ts).
    if (name.startsWith(prefix) || name.startsWith(`.${prefix}`))
      await removeDir(join(ETC_NETNS_DIR, name), failures);
  }
  if (stateDir) await removeDir(stateDir, failures);
  if (failures.length > 0) {
    throw netnsError(
      NetnsErrorCode.CLEANUP_FAILED,
      `could not remove stale ${prefix}* state: ${failures.join("; ")}`,
      {
        failures,
      },
    );
  }
  return stale;
}

/** Kills what still runs inside each existing netns in `names`, then deletes it. */
async function removeNetns(names: readonly string[], failures: string[]): Promise<void> {
  const existing = new Set(await listNetns().catch(() => [] as string[]));
  for (const name of names) {
    if (!existing.has(name)) continue;
    try {
      await killInside(name);
      await ip("netns", "del", name);
    } catch (err) {
      failures.push(`netns ${name}: ${(err as Error).message}`);
    }
  }
}

/**
 * A process left inside (a crashed test's ztunnel) keeps the namespace and its veths alive after
 * `ip netns del`, and its ports bound: it has to go first.
 */
async function killInside(name: string): Promise<void> {
  const { stdout } = await ip("netns", "pids", name);
  const pids = stdout
    .split("\n")
    .map((l) => Number.parseInt(l, 10))
    .filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function removeDir(dir: string, failures: string[]): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    failures.push(`${dir}: ${(err as Error).message}`);
  }
}
