// A node's CNI configuration: the harness writes the primary network (the reference bridge +
// host-local plugins), the node agent chains ambient-cni into the same file, and the runtime reads
// whatever is there when a pod is created, picking the file a kubelet would.

import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NetworkConfigList, PluginConf } from "./cni-runtime.js";
import { NetnsErrorCode, netnsError } from "./errors.js";

/** "10-" so that a conflist the agent might add beside it (not into it) sorts after ours. */
export const NODE_CONFLIST_FILE = "10-ambient-bridge.conflist";
export const POD_NETWORK_NAME = "ambient-pods";
export const POD_BRIDGE = "cni0";

export interface NodeNetwork {
  podCidr: string;
  gateway: string;
  /** host-local's dataDir: per node, so two nodes never share allocations. */
  ipamDir: string;
}

export function nodeConflist(node: NodeNetwork): NetworkConfigList {
  return {
    cniVersion: "1.0.0",
    name: POD_NETWORK_NAME,
    plugins: [
      {
        type: "bridge",
        bridge: POD_BRIDGE,
        // The node's cni0 holds the gateway address, so pods route off-node through the node.
        isGateway: true,
        // No SNAT: the destination (and its ztunnel's policy) must see the real pod IP.
        ipMasq: false,
        // A pod reaching its own service VIP may be sent back to itself through the bridge.
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: node.podCidr, gateway: node.gateway }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: node.ipamDir,
        },
      },
    ],
  };
}

/** Writes the node's conflist atomically (the agent may be watching the directory); returns its path. */
export async function writeNodeConflist(confDir: string, node: NodeNetwork): Promise<string> {
  await mkdir(confDir, { recursive: true });
  const file = join(confDir, NODE_CONFLIST_FILE);
  const tmp = join(confDir, `.${NODE_CONFLIST_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(nodeConflist(node), null, 2)}\n`);
  await rename(tmp, file);
  return file;
}

const CONF_EXTENSIONS = [".conflist", ".conf", ".json"];

/**
 * The network a kubelet's runtime would use: the first *.conflist / *.conf / *.json in `confDir`
 * by name (libcni's ConfFiles, sorted). A single-plugin .conf becomes a one-plugin list.
 */
export async function loadNodeNetwork(confDir: string): Promise<{ file: string; list: NetworkConfigList }> {
  let names: string[];
  try {
    names = await readdir(confDir);
  } catch (err) {
    throw netnsError(
      NetnsErrorCode.CNI_CONFIG_INVALID,
      `cannot read CNI config dir ${confDir}`,
      { confDir },
      err,
    );
  }
  const candidates = names
    .filter((n) => !n.startsWith(".") && CONF_EXTENSIONS.some((e) => n.endsWith(e)))
    .sort();
  const name = candidates[0];
  if (!name) {
    throw netnsError(NetnsErrorCode.CNI_CONFIG_INVALID, `no CNI network config in ${confDir}`, { confDir });
  }
  const file = join(confDir, name);
  return { file, list: parseNetworkConfig(file, await readFile(file, "utf8")) };
}

export function parseNetworkConfig(file: string, text: string): NetworkConfigList {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw netnsError(NetnsErrorCode.CNI_CONFIG_INVALID, `${file} is not JSON: ${(err as Error).message}`, {
      file,
    });
  }
  const problems: string[] = [];
  if (typeof raw.name !== "string" || !raw.name) problems.push("name is missing");
  if (typeof raw.cniVersion !== "string") problems.push("cniVersion is missing");
  let plugins: unknown[];
  if (file.endsWith(".conflist")) {
    plugins = Array.isArray(raw.plugins) ? raw.plugins : [];
    if (plugins.length === 0) problems.push("plugins is missing or empty");
  } else {
    const { name: _n, cniVersion: _v, ...plugin } = raw;
    plugins = [plugin];
  }
  for (const [i, p] of plugins.entries()) {
    if (typeof (p as { type?: unknown })?.type !== "string") problems.push(`plugins[${i}].type is missing`);
  }
  if (problems.length > 0) {
    throw netnsError(NetnsErrorCode.CNI_CONFIG_INVALID, `${file}: ${problems.join("; ")}`, {
      file,
      problems,
    });
  }
  const list = {
    name: raw.name as string,
    cniVersion: raw.cniVersion as string,
    plugins: plugins as PluginConf[],
  };
  return file.endsWith(".conflist") ? { ...raw, ...list } : list;
}
