// The Kubernetes API as an ObjectSource: a reflector per kind feeds one map of objects in force.
// Each object passes the same validator as in folder mode; an invalid one is reported once and its
// last good version stays in force, so a bad `kubectl apply` cannot take a working mesh down.
// Changes that arrive together are delivered as one batch.

import type { Logger } from "@ambient/core";
import type { KubeConfig } from "@kubernetes/client-node";
import { type KindInfo, type KubeObject, objectKey, SUPPORTED_KINDS } from "../model/index.js";
import type { ObjectSource, SourceProblem } from "../source.js";
import { type ObjectValidator, validateStructure } from "../validate/index.js";
import type { ResourceRef } from "./http.js";
import { Reflector, type ReflectorEvent, type ReflectorOptions } from "./reflector.js";

export interface KubeApiSourceOptions {
  logger: Logger;
  validate?: ObjectValidator;
  /** Kinds to follow (default: every kind we understand). */
  kinds?: readonly KindInfo[];
  /** Per kind (`Pod`), a field selector: the CNI agent follows only `spec.nodeName=<node>`. */
  fieldSelectors?: Readonly<Record<string, string>>;
  /** Changes closer together than this are one batch (default 10 ms). */
  batchMs?: number;
  /** Passed to every reflector (tests shorten the watchdog and the backoff). */
  reflector?: Pick<ReflectorOptions, "watchdogMs" | "backoff" | "pageSize">;
}

// The window is counted from the first change, so it is also the least an edit waits. A watch
// delivers one object per event and the control plane now translates an edit incrementally in
// ~20-30 ms of CPU, so a 50 ms window had become the largest part of an edit's latency; 10 ms
// still merges what arrives together (a kubectl apply of many objects, a relist), and while a
// translation runs further changes queue up and are taken as one anyway.
const DEFAULT_BATCH_MS = 10;

export class KubeApiSource implements ObjectSource {
  private readonly reflectors: Reflector[];
  private readonly inForce = new Map<string, KubeObject>();
  private readonly invalid = new Map<string, SourceProblem[]>();
  private readonly reported = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly unhealthy = new Set<string>();
  private batch: NodeJS.Timeout | undefined;
  /** Every kind listed once (start() resolved): listeners hear of changes from then on. */
  private listed = false;
  private changedWhileListing = false;
  /**
   * The objects in force in key order, kept sorted as events arrive (binary search, one splice) once
   * it exists: the first `objects()` after the initial lists sorts once, and an edit then costs a
   * lookup, not a re-sort of the mesh. Undefined until then.
   */
  private ordered: { keys: string[]; objects: KubeObject[] } | undefined;
  /** What `objects()` last returned: a copy, so callers never see it move under them. */
  private snapshot: readonly KubeObject[] | undefined;
  private readonly validate: ObjectValidator;

  constructor(
    kc: KubeConfig,
    private readonly o: KubeApiSourceOptions,
  ) {
    this.validate = o.validate ?? validateStructure;
    this.reflectors = (o.kinds ?? SUPPORTED_KINDS).map((kind) => {
      const resource: ResourceRef = { ...kind, version: kind.versions[0]! };
      const fieldSelector = o.fieldSelectors?.[kind.kind];
      return new Reflector({
        kc,
        resource,
        logger: o.logger,
        ...(fieldSelector ? { fieldSelector } : {}),
        ...o.reflector,
        onEvent: (type, obj) => this.onEvent(type, obj),
        onHealth: (healthy, reason) => this.onHealth(kind.kind, healthy, reason),
      });
    });
  }

  /**
   * Resolves once every kind has been listed once, and only then tells the listeners (once, if
   * anything was listed). A listener told after the first kind's list would act on part of the
   * cluster: a DaemonSet without its pods (a controller makes a second set), pods without their
   * namespaces' labels (the CNI agent unenrols them), workloads without their policies. This is
   * kube-controller-manager's WaitForCacheSync.
   */
  async start(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.start()));
    this.listed = true;
    if (this.changedWhileListing) this.notify();
  }

  async stop(): Promise<void> {
    clearTimeout(this.batch);
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  /** Relists every kind now; true when that changed what is in force. */
  async refresh(): Promise<boolean> {
    await Promise.all(this.reflectors.map((r) => r.relist()));
    const changed = this.batch !== undefined;
    this.flush();
    return changed;
  }

  objects(): readonly KubeObject[] {
    if (!this.ordered) {
      const entries = [...this.inForce.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.ordered = { keys: entries.map(([key]) => key), objects: entries.map(([, obj]) => obj) };
    }
    this.snapshot ??= this.ordered.objects.slice();
    return this.snapshot;
  }

  problems(): readonly SourceProblem[] {
    return [...this.invalid.values()].flat();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onEvent(type: ReflectorEvent, raw: KubeObject): void {
    const key = objectKey(raw);
    if (type === "DELETED") {
      this.invalid.delete(key);
      if (this.inForce.delete(key)) this.changed(key, undefined);
      return;
    }
    const result = this.validate(raw);
    if (result.ok) {
      this.invalid.delete(key);
      this.inForce.set(key, result.object);
      this.changed(key, result.object);
      return;
    }
    // The last good version (if any) stays in force; the problems are said once.
    const where = {
      file: `${raw.kind}/${raw.metadata?.namespace ? `${raw.metadata.namespace}/` : ""}${raw.metadata?.name}`,
      index: 0,
    };
    const problems = result.problems.map((p) => ({
      source: where,
      path: p.path,
      message: p.message,
      code: p.code ?? "AMB_OBJECT_INVALID",
    }));
    this.invalid.set(key, problems);
    for (const p of problems) {
      const id = `${key}|${p.path}|${p.message}`;
      if (this.reported.has(id)) continue;
      this.reported.add(id);
      this.o.logger.error(
        { object: where.file, path: p.path || undefined, code: p.code },
        `${where.file}${p.path ? ` ${p.path}` : ""}: ${p.message}${this.inForce.has(key) ? " (keeping the last good version)" : ""}`,
      );
    }
  }

  private onHealth(kind: string, healthy: boolean, reason: string): void {
    const wasHealthy = this.unhealthy.size === 0;
    if (healthy) this.unhealthy.delete(kind);
    else this.unhealthy.add(kind);
    // One line each way for the whole source, not one per kind.
    if (wasHealthy && this.unhealthy.size > 0)
      this.o.logger.warn({ reason }, "lost the Kubernetes API server; serving the last known state");
    else if (!wasHealthy && this.unhealthy.size === 0)
      this.o.logger.info("the Kubernetes API server answers again; resynced");
  }

  private changed(key: string, obj: KubeObject | undefined): void {
    this.snapshot = undefined;
    if (this.ordered) place(this.ordered, key, obj);
    if (!this.listed) {
      this.changedWhileListing = true;
      return;
    }
    if (this.batch) return;
    this.batch = setTimeout(() => this.flush(), this.o.batchMs ?? DEFAULT_BATCH_MS);
  }

  private flush(): void {
    if (!this.batch) return;
    clearTimeout(this.batch);
    this.batch = undefined;
    this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.o.logger.error({ err }, "object source listener failed");
      }
    }
  }
}

/** Puts `obj` under `key` in the sorted arrays (undefined: takes the key out). */
function place(
  ordered: { keys: string[]; objects: KubeObject[] },
  key: string,
  obj: KubeObject | undefined,
): void {
  const { keys, objects } = ordered;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  const found = keys[lo] === key;
  if (obj === undefined) {
    if (found) {
      keys.splice(lo, 1);
      objects.splice(lo, 1);
    }
  } else if (found) objects[lo] = obj;
  else {
    keys.splice(lo, 0, key);
    objects.splice(lo, 0, obj);
  }
}
