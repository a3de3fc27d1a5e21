// net.ipv4.tcp_migrate_req in a pod's netns. ztunnel's listeners there share an SO_REUSEPORT group
// so a new ztunnel can bind them before the old one stops (a rollout); when the old one closes its
// listeners, this sysctl moves connections still waiting in its accept queue to the new one's
// instead of resetting them. It is a per-netns setting, written from inside the netns (the
// /proc/sys/net view follows the writer's namespace); `tee` because coreutils is always there.

import { type ExecOptions, run } from "./exec.js";

export const MIGRATE_REQ_SYSCTL = "/proc/sys/net/ipv4/tcp_migrate_req";

/** Turns the handoff on in `netns`; rejects (the caller decides how much that matters) on failure. */
export async function enableListenerHandoff(netns: string, opts: ExecOptions = {}): Promise<void> {
  await run(netns, ["tee", MIGRATE_REQ_SYSCTL], { ...opts, input: "1\n" });
}
