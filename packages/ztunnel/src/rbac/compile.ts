// An xDS Authorization turned, once, into the form evaluated per connection: CIDRs checked,
// string matches as closures, and the rule tree simplified by ztunnel's rules for empty parts.
// Compiled forms are cached by object identity, so each pushed Authorization is compiled once.

import type { AddressMatch, Authorization, AuthorizationAction, Match, StringMatch } from "@ambient/core";
import { type Cidr, cidrFromBytes } from "@ambient/core";

export type StringMatcher = (value: string) => boolean;

export interface CompiledMatch {
  readonly namespaces: readonly StringMatcher[];
  readonly notNamespaces: readonly StringMatcher[];
  readonly principals: readonly StringMatcher[];
  readonly notPrincipals: readonly StringMatcher[];
  readonly sourceIps: readonly Cidr[];
  readonly notSourceIps: readonly Cidr[];
  readonly destinationIps: readonly Cidr[];
  readonly notDestinationIps: readonly Cidr[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
}

/** Matches of one clause (ORed); a rule is its clauses (ANDed). */
export type CompiledClause = readonly CompiledMatch[];
export type CompiledRule = readonly CompiledClause[];

export interface CompiledPolicy {
  /** `<namespace>/<name>`, the key workloads reference and logs print. */
  readonly key: string;
  readonly action: AuthorizationAction;
  readonly dryRun: boolean;
  /** Rules that can still match; a rule with no clauses left matches every connection. */
  readonly rules: readonly CompiledRule[];
  /** Some rule has no clauses: the policy matches everything (Istio's `rules: [{}]`). */
  readonly matchesAll: boolean;
}

const cache = new WeakMap<Authorization, CompiledPolicy>();

/**
 * The compiled form of `auth`, built on first use. Authorizations are treated as immutable (each
 * xDS push delivers new objects); an object mutated after its first evaluation is not recompiled.
 */
export function compilePolicy(auth: Authorization): CompiledPolicy {
  let compiled = cache.get(auth);
  if (!compiled) {
    compiled = compile(auth);
    cache.set(auth, compiled);
  }
  return compiled;
}

function compile(auth: Authorization): CompiledPolicy {
  const rules: CompiledRule[] = [];
  let matchesAll = false;
  // ztunnel: no rules → never matches; a clause with no matches → true; a Match with nothing
  // set → skipped (it never matches), so a clause whose every Match is empty is false.
  for (const rule of auth.rules ?? []) {
    const clauses: CompiledClause[] = [];
    let possible = true;
    for (const clause of rule?.clauses ?? []) {
      const raw = clause?.matches ?? [];
      if (raw.length === 0) continue; // ANDing "true" changes nothing
      const matches = raw.map(compileMatch).filter((m): m is CompiledMatch => m !== undefined);
      if (matches.length === 0) {
        possible = false;
        break;
      }
      clauses.push(matches);
    }
    if (!possible) continue;
    if (clauses.length === 0) matchesAll = true;
    rules.push(clauses);
  }
  return {
    key: `${auth.namespace}/${auth.name}`,
    action: auth.action,
    dryRun: auth.dryRun === true,
    rules,
    matchesAll,
  };
}

/** The compiled Match, or undefined when nothing usable is set (ztunnel's `is_empty`, checked
 * after malformed entries are dropped, as ztunnel converts before checking). */
function compileMatch(m: Match | undefined): CompiledMatch | undefined {
  if (!m) return undefined;
  const compiled: CompiledMatch = {
    namespaces: strings(m.namespaces),
    notNamespaces: strings(m.notNamespaces),
    principals: strings(m.principals),
    notPrincipals: strings(m.notPrincipals),
    sourceIps: cidrs(m.sourceIps),
    notSourceIps: cidrs(m.notSourceIps),
    destinationIps: cidrs(m.destinationIps),
    notDestinationIps: cidrs(m.notDestinationIps),
    destinationPorts: ports(m.destinationPorts),
    notDestinationPorts: ports(m.notDestinationPorts),
  };
  for (const key in compiled) {
    if (compiled[key as keyof CompiledMatch].length > 0) return compiled;
  }
  return undefined;
}

/** Istio's StringMatch; a match with no type set is dropped, as ztunnel does. */
export function compileStringMatch(sm: StringMatch): StringMatcher | undefined {
  if (sm == null) return undefined;
  if ("exact" in sm && typeof sm.exact === "string") {
    const exact = sm.exact;
    return (v) => v === exact;
  }
  if ("prefix" in sm && typeof sm.prefix === "string") {
    const prefix = sm.prefix;
    return (v) => v.startsWith(prefix);
  }
  if ("suffix" in sm && typeof sm.suffix === "string") {
    const suffix = sm.suffix;
    return (v) => v.endsWith(suffix);
  }
  if ("presence" in sm && sm.presence != null) return (v) => v.length > 0;
  return undefined;
}

function strings(list: readonly StringMatch[] | undefined): StringMatcher[] {
  const out: StringMatcher[] = [];
  for (const sm of list ?? []) {
    const matcher = compileStringMatch(sm);
    if (matcher) out.push(matcher);
  }
  return out;
}

function cidrs(list: readonly AddressMatch[] | undefined): Cidr[] {
  const out: Cidr[] = [];
  for (const am of list ?? []) {
    const cidr = am == null ? undefined : cidrFromBytes(am.address, am.length);
    if (cidr) out.push(cidr);
  }
  return out;
}

function ports(list: readonly number[] | undefined): number[] {
  return (list ?? []).filter((p) => Number.isInteger(p));
}
