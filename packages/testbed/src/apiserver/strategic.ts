// Strategic merge patch for the built-in fields our components and kubectl touch: lists merge by
// their Go `patchMergeKey` (containers by name, ports by containerPort or port, conditions by
// type...), with the `$patch`, `$setElementOrder` and `$deleteFromPrimitiveList` directives that
// kubectl apply sends. Lists not in the table are atomic, as for any field without a strategy.

type Json = unknown;
type JsonMap = Record<string, Json>;

function isMap(v: Json): v is JsonMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const CONTAINER_LISTS = new Set(["containers", "initContainers", "ephemeralContainers"]);

/**
 * Merge keys by field name, with the parent field where one name means two things (a Service's
 * `ports` merge by `port`, a container's by `containerPort`). `true` marks a list of scalars that
 * merges as a set (`finalizers`).
 */
export function listMergeKey(path: readonly string[]): string | true | undefined {
  const field = path.at(-1);
  const parent = path.at(-2);
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "volumes":
    case "env":
    case "imagePullSecrets":
      return "name";
    case "volumeMounts":
      return "mountPath";
    case "ports":
      if (path.length === 2 && parent === "spec") return "port";
      return parent !== undefined && CONTAINER_LISTS.has(parent) ? "containerPort" : undefined;
    case "conditions":
      return "type";
    case "addresses":
      return parent === "status" ? "type" : undefined;
    case "hostAliases":
      return "ip";
    case "ownerReferences":
      return "uid";
    case "finalizers":
      return parent === "metadata" ? true : undefined;
    default:
      return undefined;
  }
}

/** Applies a strategic merge patch; `path` is the field path of `target` from the object root. */
export function strategicMerge(target: Json, patch: Json, path: string[] = []): Json {
  if (!isMap(patch)) return structuredClone(patch);
  if (patch.$patch === "replace") {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === "delete") return undefined;
  const out: JsonMap = isMap(target) ? { ...target } : {};
  const orders: [string, Json[]][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch") continue;
    if (k.startsWith("$setElementOrder/")) {
      orders.push([k.slice("$setElementOrder/".length), v as Json[]]);
      continue;
    }
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      const drop = new Set((v as Json[]).map((x) => JSON.stringify(x)));
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (k === "$retainKeys") continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const childPath = [...path, k];
    if (Array.isArray(v)) out[k] = mergeList(out[k], v, childPath);
    else if (isMap(v)) {
      const merged = strategicMerge(out[k], v, childPath);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  for (const [field, order] of orders) {
    const cur = out[field];
    if (Array.isArray(cur)) out[field] = reorder(cur, order, listMergeKey([...path, field]));
  }
  return out;
}

function mergeList(target: Json, patch: Json[], path: string[]): Json[] {
  const key = listMergeKey(path);
  const current = Array.isArray(target) ? [...target] : [];
  if (key === undefined) return stripDirectives(patch) as Json[];
  if (key === true) {
    const seen = new Set(current.map((x) => JSON.stringify(x)));
    for (const x of patch) if (!seen.has(JSON.stringify(x))) current.push(x);
    return current;
  }
  if (patch.some((p) => isMap(p) && p.$patch === "replace")) {
    return stripDirectives(patch.filter((p) => !(isMap(p) && p.$patch === "replace"))) as Json[];
  }
  for (const item of patch) {
    if (!isMap(item)) continue;
    const idx = current.findIndex((c) => isMap(c) && c[key] === item[key]);
    if (item.$patch === "delete") {
      if (idx >= 0) current.splice(idx, 1);
      continue;
    }
    if (idx >= 0) current[idx] = strategicMerge(current[idx], item, path);
    else current.push(stripDirectives(item));
  }
  return current;
}

/** `$setElementOrder` lists the final order by merge key; items it does not name keep their place after. */
function reorder(list: Json[], order: Json[], key: string | true | undefined): Json[] {
  const id = (x: Json) =>
    key === true || key === undefined ? JSON.stringify(x) : JSON.stringify((x as JsonMap)[key]);
  const wanted = order.map((o) =>
    key === true || key === undefined ? JSON.stringify(o) : JSON.stringify((o as JsonMap)[key]),
  );
  const named = wanted.map((w) => list.find((x) => id(x) === w)).filter((x) => x !== undefined);
  const rest = list.filter((x) => !wanted.includes(id(x)));
  return [...named, ...rest];
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isMap(v)) return v;
  const out: JsonMap = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith("$")) out[k] = stripDirectives(x);
  return out;
}
