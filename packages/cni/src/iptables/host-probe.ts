// The node side of probe handling: kubelet's probes to enrolled pods leave the node with the
// probe source address, which the in-pod rules accept without capture. The chain is rewritten as
// a whole for the current set of enrolled pod IPs (no ipset by default: one rule per pod).

import type { ExecOptions } from "./exec.js";
import type { ApplyOutcome } from "./in-pod.js";
import { reconcile } from "./reconcile.js";
import { HOST_OWNED, hostProbeRules, noRules } from "./rules.js";

/**
 * Makes AMBIENT_POSTRT in `hostNetns` (undefined: the agent's own netns) SNAT exactly `podIps`
 * (IPv4 and IPv6 mixed; an empty list removes the chain). Invalid IPs reject before anything runs.
 */
export async function applyHostProbeRules(
  hostNetns: string | undefined,
  podIps: readonly string[],
  opts?: ExecOptions,
): Promise<ApplyOutcome> {
  const v4 = hostProbeRules("ipv4", podIps);
  const v6 = hostProbeRules("ipv6", podIps);
  const changed4 = await reconcile(hostNetns, v4, opts);
  // No IPv6 pods: remove stale IPv6 rules, if this host does IPv6 at all.
  const changed6 = await reconcile(hostNetns, v6, { ...opts, optional: v6.tables.length === 0 });
  return { changed: changed4 || changed6 };
}

/** Removes the chain and its jump in both families; idempotent. */
export async function removeHostProbeRules(hostNetns?: string, opts?: ExecOptions): Promise<ApplyOutcome> {
  const changed4 = await reconcile(hostNetns, noRules("ipv4", HOST_OWNED), opts);
  const changed6 = await reconcile(hostNetns, noRules("ipv6", HOST_OWNED), { ...opts, optional: true });
  return { changed: changed4 || changed6 };
}
