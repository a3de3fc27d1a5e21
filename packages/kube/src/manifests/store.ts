// A manifests folder's last good version of every object.
// A reload re-reads only files whose size, mtime or inode changed, or that were read while they could
// still be changing within one mtime tick (see RACY_MS). An invalid object is reported once and
// not applied, and its previous good version (same kind/namespace/name in the same file) stays in
// force; a file that fails to parse keeps all of its previous objects.

import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@ambient/core";
import { type KubeObject, objectKey } from "../model/index.js";
import { formatSource, type SourceRef } from "../source.js";
import { type ObjectValidator, validateStructure } from "../validate/index.js";
import { type FileLoad, listManifestFiles, loadFile, type ManifestProblem } from "./loader.js";

export interface StoredObject {
  key: string;
  object: KubeObject;
  source: SourceRef;
}

/**
 * A file modified this recently when it was read may change again without its mtime moving: file
 * systems stamp mtime from a coarse clock (a kernel tick, ~4 ms), so a same-size rewrite within that
 * tick leaves size and mtime as they were. Such a file is read again on the next reload (git's
 * "racily clean" rule); 1 s covers every file system's granularity in practice.
 */
const RACY_MS = 1_000;

interface FileStat {
  mtimeMs: number;
  size: number;
  ino: number;
}

interface FileState extends FileStat {
  /** Read within RACY_MS of its mtime: the next reload reads it again whatever stat says. */
  racy: boolean;
  /** Objects in force from this file (last good versions included). */
  objects: Map<string, StoredObject>;
  problems: ManifestProblem[];
}

export interface ReloadResult {
  /** True when the set of objects in force changed. */
  changed: boolean;
  problems: ManifestProblem[];
}

export class ManifestStore {
  private files = new Map<string, FileState>();
  private reported = new Set<string>();
  private merged = new Map<string, StoredObject>();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
    /** Decides what is an object in force; the control plane passes its schema + Istio rules. */
    private readonly validate: ObjectValidator = validateStructure,
  ) {}

  /** Objects in force, in a stable order (by key). */
  objects(): KubeObject[] {
    return [...this.merged.values()].map((s) => s.object);
  }

  entries(): StoredObject[] {
    return [...this.merged.values()];
  }

  problems(): ManifestProblem[] {
    return [...this.files.values()].flatMap((f) => f.problems);
  }

  async reload(): Promise<ReloadResult> {
    let names: string[];
    try {
      names = await listManifestFiles(this.dir);
    } catch (err) {
      // The folder itself vanished or is unreadable: keep serving what we have.
      const problem: ManifestProblem = {
        source: { file: ".", index: 0 },
        path: "",
        message: `cannot list manifests folder ${this.dir}: ${(err as Error).message}`,
        code: "AMB_MANIFEST_PARSE",
      };
      this.report([problem]);
      return { changed: false, problems: [problem] };
    }

    let changed = false;
    const next = new Map<string, FileState>();
    for (const file of names) {
      const prev = this.files.get(file);
      let st: FileStat;
      const readAt = Date.now();
      try {
        const s = await stat(join(this.dir, file));
        st = { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
      } catch {
        continue; // removed between listing and stat
      }
      if (prev && !prev.racy && prev.mtimeMs === st.mtimeMs && prev.size === st.size && prev.ino === st.ino) {
        next.set(file, prev);
        continue;
      }
      const load = await loadFile(this.dir, file);
      const state = this.applyFile(load, prev, { ...st, racy: readAt - st.mtimeMs < RACY_MS });
      if (!prev || !sameObjects(prev.objects, state.objects)) changed = true;
      next.set(file, state);
    }
    for (const file of this.files.keys()) if (!next.has(file)) changed = true;
    this.files = next;

    const duplicateProblems = changed ? this.merge() : [];
    const problems = [...this.problems(), ...duplicateProblems];
    this.report(problems);
    return { changed, problems };
  }

  private applyFile(
    load: FileLoad,
    prev: FileState | undefined,
    st: FileStat & { racy: boolean },
  ): FileState {
    if (!load.ok) {
      // Keep every object the file had; the problems say why nothing changed.
      return { ...st, objects: prev?.objects ?? new Map(), problems: load.problems };
    }
    const objects = new Map<string, StoredObject>();
    const problems = [...load.problems];
    for (const doc of load.documents) {
      const result = this.validate(doc.value);
      if (result.ok) {
        const key = objectKey(result.object);
        if (objects.has(key)) {
          problems.push({
            source: doc.source,
            path: "metadata.name",
            message: `duplicate object ${key} (also in document ${objects.get(key)!.source.index}); ignored`,
            code: "AMB_OBJECT_INVALID",
          });
          continue;
        }
        objects.set(key, { key, object: result.object, source: doc.source });
        continue;
      }
      for (const p of result.problems) {
        problems.push({
          source: doc.source,
          path: p.path,
          message: p.message,
          code: p.code ?? "AMB_OBJECT_INVALID",
        });
      }
      // Last good version stays: find the previous object with the same identity in this file.
      const key = tryKey(doc.value);
      const previous = key ? prev?.objects.get(key) : undefined;
      if (key && previous) objects.set(key, previous);
    }
    return { ...st, objects, problems };
  }

  /** Merges per-file objects; on a key defined in two files the first file (sorted) wins. */
  private merge(): ManifestProblem[] {
    const merged = new Map<string, StoredObject>();
    const problems: ManifestProblem[] = [];
    for (const state of this.files.values()) {
      for (const [key, obj] of state.objects) {
        const existing = merged.get(key);
        if (existing) {
          problems.push({
            source: obj.source,
            path: "metadata.name",
            message: `${key} is already defined in ${formatSource(existing.source)}; this copy is ignored`,
            code: "AMB_OBJECT_INVALID",
          });
          continue;
        }
        merged.set(key, obj);
      }
    }
    this.merged = new Map([...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return problems;
  }

  /** Logs each problem once: the same problem on the next reload stays quiet. */
  private report(problems: ManifestProblem[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const id = `${formatSource(p.source)}|${p.path}|${p.message}`;
      now.add(id);
      if (this.reported.has(id)) continue;
      this.logger.error(
        { file: p.source.file, document: p.source.index, path: p.path || undefined, code: p.code },
        `${formatSource(p.source)}${p.path ? ` ${p.path}` : ""}: ${p.message}`,
      );
    }
    this.reported = now;
  }
}

function tryKey(value: unknown): string | undefined {
  if (!value || typeof value !== "object") return undefined;
  const v = value as KubeObject;
  if (typeof v.kind !== "string" || typeof v.metadata?.name !== "string") return undefined;
  try {
    return objectKey(v);
  } catch {
    return undefined;
  }
}

function sameObjects(a: Map<string, StoredObject>, b: Map<string, StoredObject>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const o = b.get(k);
    if (!o || (o.object !== v.object && JSON.stringify(o.object) !== JSON.stringify(v.object))) return false;
  }
  return true;
}
