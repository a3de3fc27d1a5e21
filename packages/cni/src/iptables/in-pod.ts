// Writes and removes the in-pod capture rules (rules.ts) inside a pod's network namespace, plus
// the policy route Istio pairs them with: connections marked CONN_MARK (ztunnel → app in this
// pod) are routed to lo, so the app's replies reach ztunnel even when ztunnel used a foreign
// source address. Both steps are idempotent; re-applying leaves iptables-save byte-identical.

import { hasCode } from "@ambient/core";
import { IptablesErrorCode, isNetnsGone } from "./errors.js";
import { commandsOf, type ExecOptions, run } from "./exec.js";
import { reconcile } from "./reconcile.js";
import {
  CONN_MARK,
  type Family,
  IN_POD_OWNED,
  inPodRules,
  noRules,
  ROUTE_RULE_PRIORITY,
  ROUTE_TABLE,
} from "./rules.js";

export interface InPodOptions extends ExecOptions {
  /** IPv4 rules are always written (accepted for symmetry with `ipv6`). */
  ipv4?: true;
  /** Also write the IPv6 rules (the pod has an IPv6 address). When false, stale IPv6 rules go. */
  ipv6: boolean;
  /** Also capture the pod's port 53 into ztunnel's DNS proxy (rules.ts, InPodRuleOptions). */
  dnsCapture?: boolean;
}

export interface ApplyOutcome {
  /** Something had to be written (false: everything was already in place). */
  changed: boolean;
}

export type RemoveOutcome = "removed" | "netns-gone";

/**
 * Reconciles the in-pod rules in `netns` (a path: /var/run/netns/NAME or /proc/PID/ns/net):
 * ours are brought to exactly the wanted rules, stale and duplicate ones of ours removed, anybody
 * else's left alone. Rejects with code AMB_NETNS_GONE when the namespace is gone.
 */
export async function applyInPodRules(netns: string, opts: InPodOptions): Promise<ApplyOutcome> {
  let changed = false;
  await addRoute(netns, "ipv4", opts);
  const ruleOptions = { dnsCapture: opts.dnsCapture ?? false };
  changed = (await reconcile(netns, inPodRules("ipv4", ruleOptions), opts)) || changed;
  if (opts.ipv6) {
    await addRoute(netns, "ipv6", opts);
    changed = (await reconcile(netns, inPodRules("ipv6", ruleOptions), opts)) || changed;
  } else if (await reconcile(netns, noRules("ipv6", IN_POD_OWNED), { ...opts, optional: true })) {
    changed = true;
    await delRoute(netns, "ipv6", opts);
  }
  return { changed };
}

/** Removes every rule of ours (both families) and the policy route; fine when the netns is gone. */
export async function removeInPodRules(netns: string, opts?: ExecOptions): Promise<RemoveOutcome> {
  try {
    await reconcile(netns, noRules("ipv4", IN_POD_OWNED), opts);
    await delRoute(netns, "ipv4", opts);
    await reconcile(netns, noRules("ipv6", IN_POD_OWNED), { ...opts, optional: true });
    await delRoute(netns, "ipv6", opts);
    return "removed";
  } catch (err) {
    if (isNetnsGone(err)) return "netns-gone";
    throw err;
  }
}

const MARK = `0x${CONN_MARK.toString(16)}/0xfff`;

function ruleArgs(family: Family, verb: "add" | "del"): string[] {
  const pref = String(ROUTE_RULE_PRIORITY);
  return [familyFlag(family), "rule", verb, "fwmark", MARK, "pref", pref, "lookup", String(ROUTE_TABLE)];
}

function routeArgs(family: Family, verb: "replace" | "del"): string[] {
  const all = family === "ipv4" ? "0.0.0.0/0" : "::/0";
  return [familyFlag(family), "route", verb, "local", all, "dev", "lo", "table", String(ROUTE_TABLE)];
}

const familyFlag = (family: Family) => (family === "ipv4" ? "-4" : "-6");

/** `ip rule add fwmark 0x111/0xfff pref 32764 lookup 100` + `ip route replace local default dev lo table 100`. */
async function addRoute(netns: string, family: Family, opts: ExecOptions | undefined): Promise<void> {
  const { ip } = commandsOf(opts);
  // `ip rule add` of an identical rule fails with EEXIST (kernel NLM_F_EXCL): already there.
  await tolerate(run(netns, [ip, ...ruleArgs(family, "add")], opts), /File exists/);
  await run(netns, [ip, ...routeArgs(family, "replace")], opts);
}

async function delRoute(netns: string, family: Family, opts: ExecOptions | undefined): Promise<void> {
  const { ip } = commandsOf(opts);
  // Already gone, never created, or no IPv6 in this kernel: all mean "not there".
  const absent = /No such file or directory|No such process|FIB table does not exist|not supported/;
  await tolerate(run(netns, [ip, ...ruleArgs(family, "del")], opts), absent);
  await tolerate(run(netns, [ip, ...routeArgs(family, "del")], opts), absent);
}

async function tolerate(p: Promise<unknown>, stderr: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (hasCode(err, IptablesErrorCode.FAILED) && stderr.test((err as { stderr?: string }).stderr ?? ""))
      return;
    throw err;
  }
}
