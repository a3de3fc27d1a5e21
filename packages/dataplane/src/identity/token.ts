// The bootstrap token a proxy presents to the control plane (xDS and CA): a projected service
// account token in a cluster, a per-node token file in local mode.

import { readFile } from "node:fs/promises";

/** The token, read fresh on every use so a rotated file is picked up; absent or unreadable → undefined. */
export async function readToken(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    return undefined;
  }
}
