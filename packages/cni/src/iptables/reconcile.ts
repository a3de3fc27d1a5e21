// One reconcile pass for one netns and family: save, plan, restore. A restore can fail when
// somebody else changed the table between our save and our restore (a jump we meant to delete
// is gone); one fresh save-and-plan handles that.

import { hasCode } from "@ambient/core";
import { IptablesErrorCode } from "./errors.js";
import { commandsOf, type ExecOptions, run } from "./exec.js";
import type { Family, RuleSet } from "./rules.js";
import { countRuleLines, parseSave, planRestore, stripComments } from "./save.js";

// Seconds iptables-restore waits for the xtables lock (legacy backend; nft ignores it).
const LOCK_WAIT_S = "5";
const ATTEMPTS = 2;

function binaries(family: Family, opts: ExecOptions | undefined) {
  const c = commandsOf(opts);
  return family === "ipv4"
    ? { save: c.iptablesSave, restore: c.iptablesRestore }
    : { save: c.ip6tablesSave, restore: c.ip6tablesRestore };
}

/** iptables-save (or ip6tables-save) in `netns` (undefined: ours), optionally one table only. */
export function save(
  netns: string | undefined,
  family: Family,
  opts?: ExecOptions & { table?: string },
): Promise<string> {
  const argv = [binaries(family, opts).save];
  if (opts?.table) argv.push("-t", opts.table);
  return run(netns, argv, opts);
}

/**
 * Brings our chains in `netns` to `wanted`; true when something had to change. With `optional`,
 * a family the netns cannot do (no IPv6 in the kernel, no ip6tables) counts as "nothing of ours
 * there": fine for removals and for IPv4-only pods. A gone netns always rejects.
 */
export async function reconcile(
  netns: string | undefined,
  wanted: RuleSet,
  opts?: ExecOptions & { optional?: boolean },
): Promise<boolean> {
  const { restore } = binaries(wanted.family, opts);
  const table = wanted.owned.length === 1 ? wanted.owned[0]!.table : undefined;
  for (let attempt = 1; ; attempt++) {
    let dump: string;
    try {
      dump = await save(netns, wanted.family, { ...opts, table });
    } catch (err) {
      if (opts?.optional && attempt === 1 && unusable(err)) return false;
      throw err;
    }
    const plan = planRestore(parseSave(dump), wanted);
    if (plan === undefined) return false;
    try {
      await run(netns, [restore, "-w", LOCK_WAIT_S, "--noflush"], { ...opts, input: plan });
      return true;
    } catch (err) {
      if (attempt >= ATTEMPTS || !hasCode(err, IptablesErrorCode.FAILED)) throw err;
    }
  }
}

function unusable(err: unknown): boolean {
  return hasCode(err, IptablesErrorCode.FAILED) || hasCode(err, IptablesErrorCode.NOT_FOUND);
}

/** Number of rules (`-A` lines, all tables) in `netns`: a restarted agent must not change it. */
export async function countRules(
  netns: string | undefined,
  opts?: ExecOptions & { family?: Family },
): Promise<number> {
  return countRuleLines(await save(netns, opts?.family ?? "ipv4", opts));
}

/** The full iptables-save of `netns` without its timestamp comments, for before/after comparisons. */
export async function saveRules(
  netns: string | undefined,
  opts?: ExecOptions & { family?: Family },
): Promise<string> {
  return stripComments(await save(netns, opts?.family ?? "ipv4", opts));
}
