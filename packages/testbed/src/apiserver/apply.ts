// Server-side apply and field ownership (managedFields). An apply owns exactly the fields of its
// configuration; a field another manager owns with a different value is a conflict (409 naming
// manager and path) unless `force` moves it; fields the manager applied before and dropped now are
// removed unless someone else owns them. Plain writes (PUT, patches) record Update ownership.

import { ApiErrorCode, apiError } from "./errors.js";
import {
  describePath,
  fieldsOf,
  fromFieldsV1,
  type KeyFn,
  mergeApplied,
  removeAt,
  sameJson,
  toFieldsV1,
  valueAt,
} from "./fields.js";
import type { KubeObject } from "./store.js";

export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

interface Owner {
  entry: ManagedFieldsEntry;
  fields: Set<string>;
}

// Identity and bookkeeping fields belong to nobody (kube-apiserver strips them the same way).
const UNOWNED_META = [
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "managedFields",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "selfLink",
];

function ownable(obj: unknown): unknown {
  const o = structuredClone(obj) as KubeObject;
  delete (o as Partial<KubeObject>).apiVersion;
  delete (o as Partial<KubeObject>).kind;
  if (o.metadata) for (const k of UNOWNED_META) delete o.metadata[k];
  if (o.metadata && Object.keys(o.metadata).length === 0) delete (o as Partial<KubeObject>).metadata;
  return o;
}

function ownersOf(obj: KubeObject | undefined): Owner[] {
  return ((obj?.metadata.managedFields ?? []) as ManagedFieldsEntry[]).map((entry) => ({
    entry,
    fields: fromFieldsV1(entry.fieldsV1),
  }));
}

function sameOwner(a: ManagedFieldsEntry, manager: string, operation: string, subresource?: string): boolean {
  return a.manager === manager && a.operation === operation && (a.subresource ?? "") === (subresource ?? "");
}

function store(owners: Owner[]): ManagedFieldsEntry[] {
  return owners
    .filter((o) => o.fields.size > 0)
    .map((o) => ({ ...o.entry, fieldsV1: toFieldsV1([...o.fields].sort()) }));
}

export interface ApplyRequest {
  live: KubeObject | undefined;
  applied: KubeObject;
  manager: string;
  force: boolean;
  keyFn: KeyFn;
  now: string;
  subresource?: string;
}

export function serverSideApply(req: ApplyRequest): KubeObject {
  const { live, applied, manager, keyFn } = req;
  const appliedFields = fieldsOf(ownable(applied), keyFn);
  const owners = ownersOf(live);
  const mine = owners.find((o) => sameOwner(o.entry, manager, "Apply", req.subresource));
  const others = owners.filter((o) => o !== mine);

  const conflicts: { manager: string; path: string }[] = [];
  for (const other of others) {
    for (const path of other.fields) {
      if (!appliedFields.has(path) || path.endsWith('"."]')) continue;
      if (sameJson(valueAt(live, path), valueAt(applied, path))) continue;
      if (req.force) other.fields.delete(path);
      else conflicts.push({ manager: other.entry.manager, path });
    }
  }
  if (conflicts.length > 0) throw applyConflict(conflicts);

  let result = structuredClone(live ?? ({ metadata: {} } as KubeObject));
  // Fields this manager applied before and no longer does go, unless another manager holds them.
  for (const path of mine?.fields ?? []) {
    if (appliedFields.has(path) || others.some((o) => o.fields.has(path))) continue;
    removeAt(result, path);
  }
  const { metadata: appliedMeta, ...appliedRest } = applied;
  result = mergeApplied(result, appliedRest, keyFn) as KubeObject;
  result.metadata = mergeApplied(result.metadata, stripIdentity(appliedMeta), keyFn, [
    "metadata",
  ]) as KubeObject["metadata"];

  const entry: ManagedFieldsEntry = {
    manager,
    operation: "Apply",
    apiVersion: applied.apiVersion,
    time: req.now,
    fieldsType: "FieldsV1",
    fieldsV1: {},
    ...(req.subresource ? { subresource: req.subresource } : {}),
  };
  result.metadata.managedFields = store([...others, { entry, fields: appliedFields }]);
  return result;
}

function stripIdentity(meta: KubeObject["metadata"] | undefined): Record<string, unknown> {
  const m = { ...(meta ?? {}) };
  for (const k of UNOWNED_META) delete m[k];
  return m;
}

function applyConflict(conflicts: { manager: string; path: string }[]): Error {
  const lines = conflicts.map((c) => `conflict with "${c.manager}": ${describePath(c.path)}`);
  const head = `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}`;
  return apiError(ApiErrorCode.APPLY_CONFLICT, `${head}: ${lines.join("\n")}`, {
    causes: conflicts.map((c) => ({
      reason: "FieldManagerConflict",
      message: `conflict with "${c.manager}"`,
      field: describePath(c.path),
    })),
  });
}

export interface UpdateRequest {
  before: KubeObject | undefined;
  after: KubeObject;
  manager: string;
  keyFn: KeyFn;
  now: string;
  subresource?: string;
}

/**
 * Records an Update: the fields this write set or changed move to `manager`, as kube-apiserver
 * does, so a later apply of a different value by their previous owner conflicts.
 */
export function trackUpdate(req: UpdateRequest): ManagedFieldsEntry[] {
  const owners = ownersOf(req.before);
  const after = ownable(req.after);
  const before = req.before === undefined ? undefined : ownable(req.before);
  const changed = new Set<string>();
  for (const path of fieldsOf(after, req.keyFn)) {
    if (before === undefined || !sameJson(valueAt(before, path), valueAt(after, path))) {
      changed.add(path);
    }
  }
  const remaining = fieldsOf(after, req.keyFn);
  for (const o of owners) {
    for (const path of [...o.fields]) if (changed.has(path) || !remaining.has(path)) o.fields.delete(path);
  }
  let mine = owners.find((o) => sameOwner(o.entry, req.manager, "Update", req.subresource));
  if (!mine) {
    mine = {
      entry: {
        manager: req.manager,
        operation: "Update",
        apiVersion: req.after.apiVersion,
        time: req.now,
        fieldsType: "FieldsV1",
        fieldsV1: {},
        ...(req.subresource ? { subresource: req.subresource } : {}),
      },
      fields: new Set(),
    };
    owners.push(mine);
  }
  if (changed.size > 0) mine.entry = { ...mine.entry, time: req.now };
  for (const path of changed) mine.fields.add(path);
  return store(owners);
}
