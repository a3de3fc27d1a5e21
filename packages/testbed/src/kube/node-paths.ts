// Where a node's paths are on this disk. Every node of the one-machine cluster shares the host's
// filesystem, so a hostPath volume (a path on the node: /var/run/ztunnel, /opt/cni/bin) would be
// the same folder on every node; the kubelet stand-in maps it under a per-node root instead
// (`<state-dir>/nodes/<node>/root/<path>`). Paths the node's real network setup owns are the
// exceptions: with --netns, the node's CNI folders are the topology's (its runtime reads them) and
// /var/run/netns is the real one (`ip netns` names pods' namespaces there).

import { join, posix } from "node:path";

export interface NodePaths {
  /** The per-node root every other path goes under. */
  root: string;
  /** Node path → host path, for the folders (and what is under them) that are shared as they are. */
  shared?: Readonly<Record<string, string>>;
}

/** A function from a node path to its host path. */
export function nodePathMapper(o: NodePaths): (path: string) => string {
  const shared = Object.entries(o.shared ?? {}).map(([from, to]) => [posix.normalize(from), to] as const);
  return (path: string) => {
    if (!path.startsWith("/")) throw new Error(`hostPath "${path}" is not an absolute path`);
    const p = posix.normalize(path);
    for (const [from, to] of shared) {
      if (p === from) return to;
      if (p.startsWith(`${from}/`)) return join(to, p.slice(from.length + 1));
    }
    return join(o.root, p);
  };
}
