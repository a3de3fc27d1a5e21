// VirtualService header manipulation (`headers.request|response.{set,add,remove}`): normalising
// the configured ops, folding route- and destination-level ops into one, and applying them.
// Order inside one set of ops is Envoy's: remove first, then set, then add.

import type { HeaderOps } from "../model/request.js";
import type { HeaderOperations } from "./spec.js";

/** Normalised ops plus the Host rewrite Istio lifts out of a `host` header op. */
export interface CompiledHeaderOps {
  ops: HeaderOps;
  /** From `set.host` (wins) or `add.host`: Istio turns these into an authority rewrite. */
  authority?: string;
}

/** Pseudo-headers and Host cannot be edited as plain headers; Istio drops them from the ops. */
function isInternal(name: string): boolean {
  return name.startsWith(":") || name === "host";
}

function lowerMap(map: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!map) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(map)) {
    const lower = name.toLowerCase();
    if (!isInternal(lower)) out[lower] = String(value);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function hostOf(map: Record<string, string> | undefined): string | undefined {
  if (!map) return undefined;
  for (const [name, value] of Object.entries(map)) {
    const lower = name.toLowerCase();
    if (lower === "host" || lower === ":authority") return String(value);
  }
  return undefined;
}

export function compileHeaderOps(spec: HeaderOperations | undefined): CompiledHeaderOps {
  if (!spec) return { ops: {} };
  const ops: HeaderOps = {};
  const set = lowerMap(spec.set);
  const add = lowerMap(spec.add);
  const remove = (spec.remove ?? []).map((n) => n.toLowerCase()).filter((n) => !isInternal(n));
  if (set) ops.set = set;
  if (add) ops.add = add;
  if (remove.length > 0) ops.remove = [...new Set(remove)];
  const authority = hostOf(spec.set) ?? hostOf(spec.add);
  return authority === undefined ? { ops } : { ops, authority };
}

/**
 * One set of ops equivalent to applying `first` and then `then` (route ops, then destination
 * ops). Exact because `add` comma-joins: a later remove/set of a name discards the earlier
 * edits of it, and later adds append to whatever the earlier ops left.
 */
export function mergeHeaderOps(first: HeaderOps, then: HeaderOps): HeaderOps {
  const set: Record<string, string> = {};
  const add: Record<string, string> = {};
  const remove = new Set<string>();
  const thenRemove = new Set((then.remove ?? []).map((n) => n.toLowerCase()));
  const thenSet = lowerKeys(then.set);
  const overridden = (name: string) => thenRemove.has(name) || name in thenSet;

  for (const name of first.remove ?? []) {
    const lower = name.toLowerCase();
    if (!overridden(lower)) remove.add(lower);
  }
  for (const [name, value] of Object.entries(lowerKeys(first.set))) {
    if (!overridden(name)) set[name] = value;
  }
  for (const [name, value] of Object.entries(lowerKeys(first.add))) {
    if (!overridden(name)) add[name] = value;
  }
  for (const name of thenRemove) if (!(name in thenSet)) remove.add(name);
  for (const [name, value] of Object.entries(thenSet)) set[name] = value;
  for (const [name, value] of Object.entries(lowerKeys(then.add))) {
    add[name] = name in add ? `${add[name]}, ${value}` : value;
  }

  const out: HeaderOps = {};
  if (remove.size > 0) out.remove = [...remove];
  if (Object.keys(set).length > 0) out.set = set;
  if (Object.keys(add).length > 0) out.add = add;
  return out;
}

function lowerKeys(map: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(map ?? {})) out[name.toLowerCase()] = value;
  return out;
}

/**
 * A copy of `headers` with `ops` applied: remove deletes, set replaces, add appends to an
 * existing value with ", " (how the request model joins repeated headers). Names compare
 * case-insensitively; edited names come out lowercase.
 */
export function applyHeaderOps(headers: Record<string, string>, ops: HeaderOps): Record<string, string> {
  const out: Record<string, string> = { ...headers };
  const keyOf = (lower: string): string | undefined =>
    Object.keys(out).find((k) => k.toLowerCase() === lower);
  const drop = (lower: string) => {
    for (let k = keyOf(lower); k !== undefined; k = keyOf(lower)) delete out[k];
  };

  for (const name of ops.remove ?? []) drop(name.toLowerCase());
  for (const [name, value] of Object.entries(ops.set ?? {})) {
    drop(name.toLowerCase());
    out[name.toLowerCase()] = value;
  }
  for (const [name, value] of Object.entries(ops.add ?? {})) {
    const lower = name.toLowerCase();
    const existing = keyOf(lower);
    if (existing === undefined) {
      out[lower] = value;
    } else {
      const joined = `${out[existing]}, ${value}`;
      delete out[existing];
      out[lower] = joined;
    }
  }
  return out;
}

export function isEmptyHeaderOps(ops: HeaderOps): boolean {
  return !ops.set && !ops.add && (ops.remove === undefined || ops.remove.length === 0);
}
