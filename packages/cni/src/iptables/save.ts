// Reconciling against what is there: parse iptables-save, find every line of ours (rules in our
// chains, and any rule anywhere that jumps into them), and plan an `iptables-restore --noflush`
// that deletes exactly those, flushes our chains and writes the wanted rules. --noflush rather
// than rewriting whole tables: on a node, kube-proxy and CNI plugins (bridge ipMasq, portmap) write
// the same nat table concurrently, and a whole-table restore from an older save would drop their
// changes. Pure.

import type { RuleSet, Table } from "./rules.js";

export interface SavedTable {
  /** User-defined chains (`:NAME - [0:0]`); built-in ones have a policy and are left out. */
  chains: string[];
  /** `-A CHAIN ...` lines in order. */
  rules: string[];
}

/** iptables-save output by table. Comments, counters and COMMIT lines are dropped. */
export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      current = { chains: [], rules: [] };
      tables.set(line.slice(1), current);
    } else if (line === "COMMIT") {
      current = undefined;
    } else if (current && line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name && policy === "-") current.chains.push(name);
    } else if (current && line.startsWith("-A ")) {
      current.rules.push(line);
    }
  }
  return tables;
}

/** iptables-save text without its timestamped comments: equal text means equal rules. */
export function stripComments(text: string): string {
  return text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");
}

function chainOf(rule: string): string {
  return rule.split(/\s+/, 2)[1] ?? "";
}

/** The target of `-j X` / `-g X`, if any. */
function targetOf(rule: string): string | undefined {
  const words = rule.split(/\s+/);
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === "-j" || words[i] === "-g") return words[i + 1];
  }
  return undefined;
}

/** Our lines in one saved table: rules inside our chains and jumps into them from anywhere. */
export function ownedLines(saved: SavedTable | undefined, chains: readonly string[]): string[] {
  if (!saved) return [];
  const ours = new Set(chains);
  return saved.rules.filter((r) => ours.has(chainOf(r)) || ours.has(targetOf(r) ?? ""));
}

/**
 * The `iptables-restore --noflush` input that turns `saved` into `wanted` in the tables and chains
 * `wanted.owned` names, touching nothing else; undefined when everything is already in place (so a
 * repeated apply changes nothing, not even counters).
 */
export function planRestore(saved: Map<string, SavedTable>, wanted: RuleSet): string | undefined {
  const out: string[] = [];
  for (const { table, chains: ownedChains } of wanted.owned) {
    const have = saved.get(table);
    const want = wanted.tables.find((t) => t.table === table);
    const wantChains = want?.chains ?? [];
    const wantRules = want?.rules ?? [];
    const haveChains = (have?.chains ?? []).filter((c) => ownedChains.includes(c));
    const haveRules = ownedLines(have, ownedChains);
    if (inPlace(haveChains, haveRules, wantChains, wantRules)) continue;
    out.push(...tablePlan(table, haveChains, haveRules, wantChains, wantRules, ownedChains));
  }
  return out.length === 0 ? undefined : `${out.join("\n")}\n`;
}

function tablePlan(
  table: Table,
  haveChains: readonly string[],
  haveRules: readonly string[],
  wantChains: readonly string[],
  wantRules: readonly string[],
  ownedChains: readonly string[],
): string[] {
  const ours = new Set(ownedChains);
  // Declaring a chain under --noflush creates it, or flushes it when it exists: that removes
  // every rule inside our chains in one go. Rules elsewhere that jump into them are deleted one
  // by one, exactly as saved (duplicates included), so the stale chains can then be deleted.
  const declare = [...new Set([...haveChains, ...wantChains])];
  const deleteJumps = haveRules.filter((r) => !ours.has(chainOf(r))).map((r) => `-D ${r.slice(3)}`);
  const stale = haveChains.filter((c) => !wantChains.includes(c)).map((c) => `-X ${c}`);
  return [
    `*${table}`,
    ...declare.map((c) => `:${c} - [0:0]`),
    ...deleteJumps,
    ...wantRules,
    ...stale,
    "COMMIT",
  ];
}

/** Same chains, same rules per chain in the same order, and each jump exactly once. */
function inPlace(
  haveChains: readonly string[],
  haveRules: readonly string[],
  wantChains: readonly string[],
  wantRules: readonly string[],
): boolean {
  if (haveChains.length !== wantChains.length || !wantChains.every((c) => haveChains.includes(c)))
    return false;
  if (haveRules.length !== wantRules.length) return false;
  // iptables-save groups rules by chain (built-ins first), so compare chain by chain.
  const byChain = (rules: readonly string[]) => {
    const m = new Map<string, string[]>();
    for (const r of rules) m.set(chainOf(r), [...(m.get(chainOf(r)) ?? []), r]);
    return m;
  };
  const have = byChain(haveRules);
  const want = byChain(wantRules);
  if (have.size !== want.size) return false;
  for (const [chain, rules] of want) {
    const h = have.get(chain);
    if (!h || h.length !== rules.length || h.some((r, i) => r !== rules[i])) return false;
  }
  return true;
}

/** Number of rules (`-A` lines) in an iptables-save dump, every table. */
export function countRuleLines(text: string): number {
  return text.split("\n").filter((l) => l.startsWith("-A ")).length;
}
