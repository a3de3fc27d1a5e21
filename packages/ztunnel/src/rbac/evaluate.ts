// L4 authorization of one connection, as Istio's ztunnel decides it (src/rbac.rs and
// state.rs `assert_rbac`): a matching DENY policy denies; else no ALLOW policy allows; else any
// matching ALLOW policy allows; else deny. Dry-run policies are evaluated for logs only.

import type { Authorization, AuthorizationAction, SpiffeId } from "@ambient/core";
import { type Cidr, cidrContains, parsePeerIp } from "@ambient/core";
import { type CompiledMatch, type CompiledPolicy, compilePolicy, type StringMatcher } from "./compile.js";

/** What ztunnel knows about a connection when it authorizes it. */
export interface ConnectionFacts {
  srcIp: string;
  dstIp: string;
  dstPort: number;
  /** The peer's mTLS identity; absent for plaintext. */
  srcIdentity?: SpiffeId;
}

export type DecisionReason = "denied-by-policy" | "no-allow-match" | "allowed-by-policy" | "no-policies";

export interface DryRunDecision {
  /** `<namespace>/<name>` */
  readonly policy: string;
  readonly action: AuthorizationAction;
  /** Whether the policy matched: a matching DENY (or no matching ALLOW) would have changed the outcome. */
  readonly matched: boolean;
}

export interface Decision {
  readonly allowed: boolean;
  /**
   * `no-policies`: no enforced ALLOW policy applies (and no DENY matched), so the connection is
   * allowed by default, as in Istio.
   */
  readonly reason: DecisionReason;
  /** `<namespace>/<name>` of the policy that decided (denied-by-policy, allowed-by-policy). */
  readonly policy?: string;
  /** For `no-allow-match`: the enforced ALLOW policies, none of which matched. */
  readonly allowPolicies?: readonly string[];
  /** One entry per dry-run policy, in input order; never affects `allowed`. */
  readonly dryRunDecisions: readonly DryRunDecision[];
}

const NONE: readonly DryRunDecision[] = Object.freeze([]);
// Listing every policy in a log line would let one misconfigured namespace flood the logs.
const MAX_EXPLAINED_POLICIES = 10;
const SPIFFE_SCHEME_LENGTH = "spiffe://".length;

/**
 * The connection's facts in the forms matches compare against, computed on first use: a policy
 * set that only checks ports never parses an address or formats a principal.
 */
class ConnectionView {
  readonly port: number;
  readonly #conn: ConnectionFacts;
  #src: Uint8Array | null | undefined;
  #dst: Uint8Array | null | undefined;
  #principal: string | undefined;

  constructor(conn: ConnectionFacts) {
    this.#conn = conn;
    this.port = conn.dstPort;
  }

  /** Undefined when the address does not parse: then no IP block contains it. */
  get src(): Uint8Array | undefined {
    if (this.#src === undefined) this.#src = parsePeerIp(this.#conn.srcIp) ?? null;
    return this.#src ?? undefined;
  }

  get dst(): Uint8Array | undefined {
    if (this.#dst === undefined) this.#dst = parsePeerIp(this.#conn.dstIp) ?? null;
    return this.#dst ?? undefined;
  }

  get namespace(): string | undefined {
    return this.#conn.srcIdentity?.namespace;
  }

  /** `<td>/ns/<ns>/sa/<sa>`: Istio principals are written without the `spiffe://` scheme. */
  get principal(): string | undefined {
    const id = this.#conn.srcIdentity;
    if (!id) return undefined;
    this.#principal ??= id.toString().slice(SPIFFE_SCHEME_LENGTH);
    return this.#principal;
  }
}

/**
 * A string field. Without an identity there is no value: positive matchers cannot match and
 * negative ones exclude nothing. This is ztunnel's principal rule (it compares only identities
 * that start with spiffe://), which is what makes STRICT's `notPrincipals: [presence]` deny
 * plaintext peers and only them.
 */
function stringField(
  positive: readonly StringMatcher[],
  negative: readonly StringMatcher[],
  value: string | undefined,
): boolean {
  if (positive.length > 0) {
    if (value === undefined) return false;
    let any = false;
    for (const m of positive) {
      if (m(value)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (negative.length > 0 && value !== undefined) {
    for (const m of negative) if (m(value)) return false;
  }
  return true;
}

function ipField(
  positive: readonly Cidr[],
  negative: readonly Cidr[],
  addr: Uint8Array | undefined,
): boolean {
  if (positive.length > 0) {
    if (!addr) return false;
    let any = false;
    for (const c of positive) {
      if (cidrContains(c, addr)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (addr) for (const c of negative) if (cidrContains(c, addr)) return false;
  return true;
}

function portField(positive: readonly number[], negative: readonly number[], port: number): boolean {
  if (positive.length > 0 && !positive.includes(port)) return false;
  return negative.length === 0 || !negative.includes(port);
}

/** Every set field must match; cheapest fields first. */
function matchOne(m: CompiledMatch, view: ConnectionView): boolean {
  return (
    portField(m.destinationPorts, m.notDestinationPorts, view.port) &&
    // Length checks first so that a match without IP fields never parses an address.
    (m.destinationIps.length + m.notDestinationIps.length === 0 ||
      ipField(m.destinationIps, m.notDestinationIps, view.dst)) &&
    (m.sourceIps.length + m.notSourceIps.length === 0 || ipField(m.sourceIps, m.notSourceIps, view.src)) &&
    stringField(m.namespaces, m.notNamespaces, view.namespace) &&
    stringField(m.principals, m.notPrincipals, view.principal)
  );
}

/** Rules ORed; clauses in a rule ANDed; matches in a clause ORed. */
function policyMatches(p: CompiledPolicy, view: ConnectionView): boolean {
  if (p.matchesAll) return true;
  rules: for (const rule of p.rules) {
    for (const clause of rule) {
      let clauseMatched = false;
      for (const m of clause) {
        if (matchOne(m, view)) {
          clauseMatched = true;
          break;
        }
      }
      if (!clauseMatched) continue rules;
    }
    return true;
  }
  return false;
}

/** True when `policy` matches `conn`, ignoring its action and dry-run flag. */
export function matches(policy: Authorization, conn: ConnectionFacts): boolean {
  return policyMatches(compilePolicy(policy), new ConnectionView(conn));
}

/**
 * The decision for `conn` under `policies` (those that apply to the destination workload: see
 * PolicyIndex). The order of `policies` only decides which policy is named when several match.
 */
export function evaluate(policies: readonly Authorization[], conn: ConnectionFacts): Decision {
  if (policies.length === 0) return { allowed: true, reason: "no-policies", dryRunDecisions: NONE };
  const view = new ConnectionView(conn);
  let dryRun: DryRunDecision[] | undefined;
  let allows: CompiledPolicy[] | undefined;
  let denied: CompiledPolicy | undefined;

  // One pass: DENY policies until one matches, ALLOW ones set aside, every dry-run policy
  // evaluated (its result is logged whatever the outcome).
  for (const auth of policies) {
    const p = compilePolicy(auth);
    if (p.dryRun) {
      dryRun ??= [];
      dryRun.push({ policy: p.key, action: p.action, matched: policyMatches(p, view) });
    } else if (p.action === "DENY") {
      if (!denied && policyMatches(p, view)) denied = p;
    } else {
      allows ??= [];
      allows.push(p);
    }
  }
  const dryRunDecisions = dryRun ?? NONE;

  if (denied) return { allowed: false, reason: "denied-by-policy", policy: denied.key, dryRunDecisions };
  if (!allows) return { allowed: true, reason: "no-policies", dryRunDecisions };
  for (const p of allows) {
    if (policyMatches(p, view))
      return { allowed: true, reason: "allowed-by-policy", policy: p.key, dryRunDecisions };
  }
  return {
    allowed: false,
    reason: "no-allow-match",
    allowPolicies: allows.map((p) => p.key),
    dryRunDecisions,
  };
}

/** One line for logs and access logs, e.g. `denied by policy demo/deny-legacy`. */
export function explain(decision: Decision): string {
  let line: string;
  switch (decision.reason) {
    case "denied-by-policy":
      line = `denied by policy ${decision.policy ?? "(unknown)"}`;
      break;
    case "allowed-by-policy":
      line = `allowed by policy ${decision.policy ?? "(unknown)"}`;
      break;
    case "no-allow-match":
      line = `no ALLOW policy matched (policies: ${list(decision.allowPolicies ?? [])})`;
      break;
    case "no-policies":
      line = "allowed: no ALLOW policy applies";
      break;
  }
  if (decision.dryRunDecisions.length > 0) {
    const dry = decision.dryRunDecisions.map(
      (d) => `${d.policy} ${d.action} ${d.matched ? "matched" : "did not match"}`,
    );
    line += `; dry-run: ${list(dry)}`;
  }
  return line;
}

function list(items: readonly string[]): string {
  if (items.length <= MAX_EXPLAINED_POLICIES) return items.join(", ");
  const more = items.length - MAX_EXPLAINED_POLICIES;
  return `${items.slice(0, MAX_EXPLAINED_POLICIES).join(", ")} and ${more} more`;
}
