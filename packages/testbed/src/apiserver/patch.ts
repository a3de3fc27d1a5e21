// The patch types a PATCH may carry, by Content-Type: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902) and strategic merge (strategic.ts); apply patches go to apply.ts. Anything else is
// 415 naming the accepted types, as kube-apiserver answers.

import { ApiErrorCode, apiError, badRequest } from "./errors.js";
import { strategicMerge } from "./strategic.js";

export const PATCH_TYPES = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
  applyCbor: "application/apply-patch+cbor",
} as const;

export type PatchKind = "json" | "merge" | "strategic" | "apply";

/** Strategic merge needs Go struct tags, so custom resources refuse it (as the real server does). */
export function patchKindOf(contentType: string | undefined, builtin: boolean): PatchKind {
  const base = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (base === PATCH_TYPES.json) return "json";
  if (base === PATCH_TYPES.merge) return "merge";
  if (base === PATCH_TYPES.apply) return "apply";
  if (base === PATCH_TYPES.strategic && builtin) return "strategic";
  const accepted: string[] = [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply];
  if (builtin) accepted.splice(2, 0, PATCH_TYPES.strategic);
  throw apiError(
    ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`,
  );
}

type Json = unknown;

function isMap(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge, null deletes, everything else (lists included) replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Record<string, Json> = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function applyPatch(
  kind: Exclude<PatchKind, "apply">,
  target: Json,
  patch: Json,
  path: string[] = [],
): Json {
  if (kind === "merge") return mergePatch(target, patch);
  if (kind === "json") return jsonPatch(target, patch);
  return strategicMerge(target, patch, path);
}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

/** RFC 6902 over a copy; any failed operation fails the whole patch with what and where. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest("json patch must be a list of operations");
  let doc = structuredClone(target);
  for (const [i, raw] of ops.entries()) {
    const op = raw as Operation;
    if (!isMap(op) || typeof op.op !== "string" || typeof op.path !== "string") {
      throw badRequest(`json patch operation ${i}: needs "op" and "path"`);
    }
    const at = `json patch operation ${i} (${op.op} ${op.path})`;
    switch (op.op) {
      case "add":
        doc = setAt(doc, pointer(op.path), structuredClone(op.value), "add", at);
        break;
      case "replace":
        getAt(doc, pointer(op.path), at);
        doc = setAt(doc, pointer(op.path), structuredClone(op.value), "replace", at);
        break;
      case "remove":
        doc = removeAt(doc, pointer(op.path), at);
        break;
      case "move": {
        const value = getAt(doc, pointer(op.from ?? ""), at);
        doc = removeAt(doc, pointer(op.from ?? ""), at);
        doc = setAt(doc, pointer(op.path), value, "add", at);
        break;
      }
      case "copy":
        doc = setAt(
          doc,
          pointer(op.path),
          structuredClone(getAt(doc, pointer(op.from ?? ""), at)),
          "add",
          at,
        );
        break;
      case "test":
        if (JSON.stringify(getAt(doc, pointer(op.path), at)) !== JSON.stringify(op.value)) {
          throw apiError(ApiErrorCode.INVALID, `${at}: testing value failed`);
        }
        break;
      default:
        throw badRequest(`${at}: unknown operation "${op.op}"`);
    }
  }
  return doc;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw badRequest(`json pointer "${path}" must start with "/"`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function getAt(doc: Json, segs: string[], at: string): Json {
  let cur = doc;
  for (const s of segs) {
    if (Array.isArray(cur) && /^\d+$/.test(s) && Number(s) < cur.length) cur = cur[Number(s)];
    else if (isMap(cur) && Object.hasOwn(cur, s)) cur = cur[s];
    else throw apiError(ApiErrorCode.INVALID, `${at}: path not found`);
  }
  return cur;
}

function setAt(doc: Json, segs: string[], value: Json, mode: "add" | "replace", at: string): Json {
  if (segs.length === 0) return value;
  const parent = getAt(doc, segs.slice(0, -1), at);
  const last = segs.at(-1)!;
  if (Array.isArray(parent)) {
    const idx = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(idx) || idx > parent.length)
      throw apiError(ApiErrorCode.INVALID, `${at}: bad index`);
    if (mode === "add") parent.splice(idx, 0, value);
    else parent[idx] = value;
  } else if (isMap(parent)) parent[last] = value;
  else throw apiError(ApiErrorCode.INVALID, `${at}: parent is not an object or list`);
  return doc;
}

function removeAt(doc: Json, segs: string[], at: string): Json {
  const parent = getAt(doc, segs.slice(0, -1), at);
  const last = segs.at(-1)!;
  getAt(doc, segs, at);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete (parent as Record<string, Json>)[last];
  return doc;
}
