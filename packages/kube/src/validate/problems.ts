// The problem list every validator appends to, and the helpers that read unvalidated JSON safely.
// Validators never stop at the first problem: a user fixing a manifest should see all of them at
// once, each with the dotted path of the field (`spec.rules[0].from[1].source.principals[2]`).

export interface Problem {
  /** Dotted path with array indices; "" for the object as a whole. */
  path: string;
  message: string;
  /** Stable error code (AMB_OBJECT_INVALID when absent). */
  code?: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Appends one segment: `[3]` for an array index, `.name` for a field, `["a.b/c"]` for a map key. */
export function at(base: string, segment: string | number): string {
  if (typeof segment === "number") return `${base}[${segment}]`;
  if (IDENTIFIER.test(segment)) return base ? `${base}.${segment}` : segment;
  return `${base}[${JSON.stringify(segment)}]`;
}

/** Appends several field segments at once: `atPath("spec", "mtls.mode")` is `spec.mtls.mode`. */
export function atPath(base: string, fields: string): string {
  return fields.split(".").reduce<string>((path, field) => at(path, field), base);
}

export class Problems {
  readonly list: Problem[] = [];
  private readonly seen = new Set<string>();

  add(path: string, message: string, code?: string): void {
    // Schema and semantic checks can spot the same mistake; say it once.
    const id = `${path}\u0000${message}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.list.push(code === undefined ? { path, message } : { path, message, code });
  }

  get size(): number {
    return this.list.length;
  }
}

export type Json = Record<string, unknown>;

export function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `value` as a record, or an empty one when it is absent or the wrong type (schema reports that). */
export function record(value: unknown): Json {
  return isRecord(value) ? value : {};
}

/** True when a field is set to something (Istio's "len(x) > 0" for lists, non-nil for messages). */
export function present(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "string") return value.length > 0;
  return true;
}

/** Quotes a user value for a message, shortened so one bad field cannot flood the log. */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/** Calls `fn` for each mapping in a list field; reports non-lists and non-mapping items. */
export function eachItem(
  value: unknown,
  path: string,
  problems: Problems,
  fn: (item: Json, itemPath: string, index: number) => void,
): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) {
    problems.add(path, "must be a list");
    return;
  }
  value.forEach((item, i) => {
    const itemPath = at(path, i);
    if (!isRecord(item)) problems.add(itemPath, "must be a mapping");
    else fn(item, itemPath, i);
  });
}

/**
 * Like eachItem but silent about shapes: for kinds whose CRD schema already reported a list that
 * is not a list, semantic checks just skip what they cannot read.
 */
export function forEachRecord(
  value: unknown,
  path: string,
  fn: (item: Json, itemPath: string, index: number) => void,
): void {
  if (!Array.isArray(value)) return;
  value.forEach((item, i) => {
    if (isRecord(item)) fn(item, at(path, i), i);
  });
}

/** The strings of a list field with their paths, skipping non-strings (the schema reports those). */
export function stringsAt(value: unknown, path: string): { value: string; path: string }[] {
  if (!Array.isArray(value)) return [];
  const out: { value: string; path: string }[] = [];
  value.forEach((v, i) => {
    if (typeof v === "string") out.push({ value: v, path: at(path, i) });
  });
  return out;
}
