// What --netns needs from the machine (root, nsenter, iptables, the reference CNI plugins), checked
// before anything is created, naming the Debian package that provides what is missing.

import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { netns } from "@ambient/testbed";

const NETNS_TOOLS: readonly [string, string][] = [
  ["/usr/bin/nsenter", "util-linux"],
  ["/usr/sbin/iptables-restore", "iptables"],
  ["/usr/bin/curl", "curl"],
  [join(netns.SYSTEM_CNI_BIN_DIR, "bridge"), "containernetworking-plugins"],
  [join(netns.SYSTEM_CNI_BIN_DIR, "host-local"), "containernetworking-plugins"],
];

export function requireNetnsTools(): void {
  if (process.getuid?.() !== 0)
    throw new Error("--netns needs root: it creates network namespaces, veth pairs and iptables rules");
  const missing = NETNS_TOOLS.filter(([path]) => {
    try {
      accessSync(path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0)
    throw new Error(
      `--netns needs ${missing.map(([p]) => p).join(", ")}: apt-get install -y ${[...new Set(missing.map(([, pkg]) => pkg))].join(" ")}`,
    );
}
