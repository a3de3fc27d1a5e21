// Names and addresses of the netns harness (PLAN: "Addresses"). Everything we create carries the
// prefix, so a crashed run's leftovers can be found and removed by name alone.

import { NetnsErrorCode, netnsError } from "./errors.js";

/** `ambientctl up --netns` and the default for tests that do not run in parallel. */
export const DEFAULT_PREFIX = "ambient-";

/** Where `ip netns add` mounts a namespace; CNI_NETNS and nsenter take this path. */
export const NETNS_RUN_DIR = "/var/run/netns";

/** `ip netns exec <name>` bind-mounts /etc/netns/<name>/* over /etc (our per-pod hosts files). */
export const ETC_NETNS_DIR = "/etc/netns";

/** The node link: node i (1-based) is 198.18.0.(10+i)/24 on the switch's bridge. */
const NODE_NET = "198.18.0";
const NODE_HOST_OFFSET = 10;
export const NODE_PREFIX_LEN = 24;

/** Node i's pods: 198.19.i.0/24, gateway (cni0 in the node netns) 198.19.i.1. */
const POD_NET = "198.19";

/** Room for 198.18.0.(10+i) below the broadcast address, and one /24 of 198.19 per node. */
export const MAX_NODES = 200;

/** Linux IFNAMSIZ is 16 including the NUL: longer interface names are refused by the kernel. */
export const MAX_IFNAME = 15;

// Lowercase DNS-label characters plus dots (Node names may be FQDNs). No "/" or "..": a netns
// name is a file name under /var/run/netns and a directory under /etc/netns.
const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const PREFIX_RE = /^[a-z0-9][-a-z0-9]*$/;

export function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name) || name.includes("..")) {
    throw netnsError(
      NetnsErrorCode.NAME_INVALID,
      `${what} ${JSON.stringify(name)} is not a lowercase DNS name (a-z, 0-9, '-', '.')`,
      { what, name },
    );
  }
}

export function checkPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) {
    throw netnsError(
      NetnsErrorCode.NAME_INVALID,
      `netns prefix ${JSON.stringify(prefix)} must match ${PREFIX_RE}`,
      {
        prefix,
      },
    );
  }
}

export function netnsPath(name: string): string {
  return `${NETNS_RUN_DIR}/${name}`;
}

export function switchNetnsName(prefix: string): string {
  return `${prefix}switch`;
}

export function nodeNetnsName(prefix: string, node: string): string {
  return `${prefix}node-${node}`;
}

/** PLAN: a pod's netns is `ambient-<namespace>-<pod>`, so a person can `ip netns exec` into it. */
export function podNetnsName(prefix: string, namespace: string, pod: string): string {
  return `${prefix}${namespace}-${pod}`;
}

export function nodeIp(index: number): string {
  return `${NODE_NET}.${NODE_HOST_OFFSET + index}`;
}

export function podCidr(index: number): string {
  return `${POD_NET}.${index}.0/24`;
}

export function podGateway(index: number): string {
  return `${POD_NET}.${index}.1`;
}
