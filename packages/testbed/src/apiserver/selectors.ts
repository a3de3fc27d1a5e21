// Label and field selectors as kube-apiserver parses them. Field selectors are checked against the
// kind's supported fields before anything is listed: an unknown one is a 400 naming the field,
// as the real server answers, never a silently empty list.

import { badRequest } from "./errors.js";
import type { ResourceType } from "./resources.js";
import type { KubeObject } from "./store.js";

type LabelRequirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists" };

export type LabelSelector = LabelRequirement[];

/** Splits on commas outside parentheses: `a in (x,y),b` is two requirements. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  if (!text) return [];
  return splitTop(text).map((part): LabelRequirement => {
    const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(part);
    if (set) {
      const values = set[3]!.split(",").map((v) => v.trim());
      return { key: set[1]!, op: set[2] as "in" | "notin", values };
    }
    const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (cmp) return { key: cmp[1]!, op: cmp[2] === "!=" ? "!=" : "=", value: cmp[3]! };
    if (/^![^=!\s()]+$/.test(part)) return { key: part.slice(1), op: "!exists" };
    if (/^[^=!\s()]+$/.test(part)) return { key: part, op: "exists" };
    throw badRequest(`unable to parse requirement: invalid label selector "${text}" at "${part}"`);
  });
}

export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case "=":
        return has && l[r.key] === r.value;
      case "!=":
        return !has || l[r.key] !== r.value;
      case "in":
        return has && r.values.includes(l[r.key]!);
      case "notin":
        return !has || !r.values.includes(l[r.key]!);
      case "exists":
        return has;
      case "!exists":
        return !has;
    }
    return false;
  });
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

/** Parses and validates against the kind: `metadata.name` and `metadata.namespace` always work. */
export function parseFieldSelector(text: string | null | undefined, type: ResourceType): FieldRequirement[] {
  if (!text) return [];
  const out: FieldRequirement[] = [];
  for (const part of splitEscaped(text, ",")) {
    if (part.trim() === "") continue;
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    const field = m[1]!.trim();
    const supported = ["metadata.name", "metadata.namespace", ...type.fieldSelectors];
    if (!supported.includes(field)) {
      // kube-apiserver's wording: client-go and kubectl users search for it.
      throw badRequest(
        `field label not supported: ${field} (${type.resource} support: ${supported.map((f) => `"${f}"`).join(", ")})`,
      );
    }
    out.push({ field, op: m[2] === "!=" ? "!=" : "=", value: unescapeValue(m[3]!) });
  }
  return out;
}

export function matchesFields(reqs: FieldRequirement[], obj: KubeObject): boolean {
  return reqs.every((r) => {
    const actual = fieldValue(obj, r.field);
    return r.op === "=" ? actual === r.value : actual !== r.value;
  });
}

/** A field's value as the real server's GetAttrs renders it: missing is "", booleans as text. */
function fieldValue(obj: KubeObject, path: string): string {
  let cur: unknown = obj;
  for (const seg of path.split(".")) cur = (cur as Record<string, unknown> | undefined)?.[seg];
  if (cur === undefined || cur === null) return path === "spec.hostNetwork" ? "false" : "";
  return String(cur);
}

// Field selector values escape `\`, `,` and `=` with a backslash (fields.EscapeValue).
function splitEscaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      cur += ch + text[++i];
    } else if (ch === sep) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function unescapeValue(value: string): string {
  return value.replace(/\\(.)/g, "$1");
}
