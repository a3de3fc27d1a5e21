// The JSONPath subset CRD printer columns use (`additionalPrinterColumns[].jsonPath`): fields,
// `[*]`, `[n]` and the filter `[?(@.field=="value")]`, as in the Gateway API CRDs'
// `.status.conditions[?(@.type=="Programmed")].status`. Several results print comma-separated.

type Step =
  | { kind: "field"; name: string }
  | { kind: "all" }
  | { kind: "index"; i: number }
  | { kind: "filter"; path: string[]; value: string };

const STEP =
  /^(?:\.([A-Za-z0-9_-]+)|\[\*\]|\[(\d+)\]|\[\?\(@((?:\.[A-Za-z0-9_-]+)+)\s*==\s*(?:"([^"]*)"|'([^']*)')\)\])/;

export function parseJsonPath(path: string): Step[] {
  const steps: Step[] = [];
  let rest = path.trim().replace(/^\{(.*)\}$/, "$1");
  while (rest.length > 0) {
    const m = STEP.exec(rest);
    if (!m) throw new Error(`unsupported JSONPath at "${rest}" in ${path}`);
    if (m[1] !== undefined) steps.push({ kind: "field", name: m[1] });
    else if (m[2] !== undefined) steps.push({ kind: "index", i: Number(m[2]) });
    else if (m[3] !== undefined)
      steps.push({ kind: "filter", path: m[3].slice(1).split("."), value: m[4] ?? m[5] ?? "" });
    else steps.push({ kind: "all" });
    rest = rest.slice(m[0].length);
  }
  return steps;
}

export function evalJsonPath(obj: unknown, path: string): unknown[] {
  let values: unknown[] = [obj];
  for (const step of parseJsonPath(path)) {
    const next: unknown[] = [];
    for (const v of values) {
      if (v === undefined || v === null) continue;
      if (step.kind === "field") next.push((v as Record<string, unknown>)[step.name]);
      else if (!Array.isArray(v)) continue;
      else if (step.kind === "all") next.push(...v);
      else if (step.kind === "index") next.push(v[step.i]);
      else
        next.push(
          ...v.filter((item) => {
            const got = step.path.reduce<unknown>(
              (cur, k) => (cur as Record<string, unknown> | undefined)?.[k],
              item,
            );
            return got !== undefined && String(got) === step.value;
          }),
        );
    }
    values = next.filter((x) => x !== undefined && x !== null);
  }
  return values;
}

/** A printer cell: scalars as text, objects as JSON, several results joined by commas. */
export function jsonPathCell(obj: unknown, path: string): string {
  return evalJsonPath(obj, path)
    .map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v)))
    .join(",");
}
