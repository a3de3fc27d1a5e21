// Field sets for server-side apply: which leaf fields a manager owns, as paths of FieldsV1 tokens
// (`f:name`, `k:{"name":"web"}` for an item of a keyed list, `v:"x"` for a set member, `.` for an
// item itself), convertible to and from the `managedFields[].fieldsV1` object clients read.

import { listMergeKey } from "./strategic.js";

type Json = unknown;
type JsonMap = Record<string, Json>;

export type KeyFn = (path: readonly string[]) => string | true | undefined;

function isMap(v: Json): v is JsonMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Built-ins merge lists by their Go keys; custom resources only in metadata (lists are atomic). */
export function keyFnFor(builtin: boolean): KeyFn {
  return builtin ? listMergeKey : (path) => (path[0] === "metadata" ? listMergeKey(path) : undefined);
}

/** Leaf paths of `obj` (each a JSON-encoded token array). */
export function fieldsOf(obj: Json, keyFn: KeyFn): Set<string> {
  const out = new Set<string>();
  walkMap(obj, [], [], keyFn, out);
  return out;
}

function walkMap(v: Json, tokens: string[], names: string[], keyFn: KeyFn, out: Set<string>): void {
  if (!isMap(v)) return;
  for (const [k, x] of Object.entries(v)) {
    const t = [...tokens, `f:${k}`];
    const n = [...names, k];
    if (isMap(x) && Object.keys(x).length > 0) walkMap(x, t, n, keyFn, out);
    else if (Array.isArray(x) && x.length > 0 && keyFn(n) !== undefined) walkList(x, t, n, keyFn, out);
    else out.add(JSON.stringify(t));
  }
}

function walkList(list: Json[], tokens: string[], names: string[], keyFn: KeyFn, out: Set<string>): void {
  const key = keyFn(names)!;
  for (const item of list) {
    if (key === true || !isMap(item)) {
      out.add(JSON.stringify([...tokens, `v:${JSON.stringify(item)}`]));
      continue;
    }
    const t = [...tokens, `k:${JSON.stringify({ [key]: item[key] })}`];
    out.add(JSON.stringify([...t, "."]));
    walkMap(item, t, names, keyFn, out);
  }
}

export function toFieldsV1(paths: Iterable<string>): JsonMap {
  const root: JsonMap = {};
  for (const p of paths) {
    let cur = root;
    for (const tok of JSON.parse(p) as string[]) {
      cur[tok] ??= {};
      cur = cur[tok] as JsonMap;
    }
  }
  return root;
}

export function fromFieldsV1(fields: Json): Set<string> {
  const out = new Set<string>();
  const walk = (node: Json, tokens: string[]) => {
    if (!isMap(node)) return;
    const entries = Object.entries(node);
    if (entries.length === 0 && tokens.length > 0) out.add(JSON.stringify(tokens));
    for (const [tok, child] of entries) walk(child, [...tokens, tok]);
  };
  walk(fields, []);
  return out;
}

/** Where a token path leads in `obj`: the value, or undefined. */
export function valueAt(obj: Json, path: string): Json {
  let cur: Json = obj;
  for (const tok of JSON.parse(path) as string[]) {
    if (tok === ".") continue;
    cur = step(cur, tok);
    if (cur === undefined) return undefined;
  }
  return cur;
}

function step(cur: Json, tok: string): Json {
  if (tok.startsWith("f:")) return isMap(cur) ? cur[tok.slice(2)] : undefined;
  if (!Array.isArray(cur)) return undefined;
  if (tok.startsWith("v:")) return cur.find((x) => JSON.stringify(x) === tok.slice(2));
  const want = JSON.parse(tok.slice(2)) as JsonMap;
  return cur.find((x) => isMap(x) && Object.entries(want).every(([k, v]) => x[k] === v));
}

/** Removes the field (or list item, for a `.` or `v:` path) a token path names, if present. */
export function removeAt(obj: Json, path: string): void {
  const tokens = (JSON.parse(path) as string[]).filter((t) => t !== ".");
  let cur: Json = obj;
  for (const tok of tokens.slice(0, -1)) {
    cur = step(cur, tok);
    if (cur === undefined) return;
  }
  const last = tokens.at(-1)!;
  if (last.startsWith("f:") && isMap(cur)) delete cur[last.slice(2)];
  else if (Array.isArray(cur)) {
    const item = step(cur, last);
    const idx = cur.indexOf(item);
    if (idx >= 0) cur.splice(idx, 1);
  }
}

/** `.spec.containers[name="web"].image`: how kube-apiserver prints a path in conflict messages. */
export function describePath(path: string): string {
  return (JSON.parse(path) as string[])
    .filter((t) => t !== ".")
    .map((t) => {
      if (t.startsWith("f:")) return `.${t.slice(2)}`;
      if (t.startsWith("v:")) return `[${t.slice(2)}]`;
      const kv = JSON.parse(t.slice(2)) as JsonMap;
      return `[${Object.entries(kv)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(",")}]`;
    })
    .join("");
}

/** Merges an applied configuration into the live object: maps and keyed lists merge, the rest replaces. */
export function mergeApplied(live: Json, applied: Json, keyFn: KeyFn, names: string[] = []): Json {
  if (!isMap(applied)) return structuredClone(applied);
  const out: JsonMap = isMap(live) ? { ...live } : {};
  for (const [k, v] of Object.entries(applied)) {
    const n = [...names, k];
    const key = keyFn(n);
    if (v === null) delete out[k];
    else if (Array.isArray(v) && key !== undefined && Array.isArray(out[k])) {
      out[k] = mergeKeyedList(out[k] as Json[], v, key, keyFn, n);
    } else if (isMap(v)) out[k] = mergeApplied(out[k], v, keyFn, n);
    else out[k] = structuredClone(v);
  }
  return out;
}

function mergeKeyedList(
  live: Json[],
  applied: Json[],
  key: string | true,
  keyFn: KeyFn,
  names: string[],
): Json[] {
  const out = [...live];
  for (const item of applied) {
    const idx =
      key === true || !isMap(item)
        ? out.findIndex((x) => JSON.stringify(x) === JSON.stringify(item))
        : out.findIndex((x) => isMap(x) && x[key] === item[key]);
    if (idx < 0) out.push(structuredClone(item));
    else if (key !== true) out[idx] = mergeApplied(out[idx], item, keyFn, names);
  }
  return out;
}

/** Deep equality of JSON values, ignoring key order (patches reorder keys). */
export function sameJson(a: Json, b: Json): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isMap(v)) {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "undefined";
}
