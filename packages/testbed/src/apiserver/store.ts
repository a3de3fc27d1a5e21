// In-memory storage with etcd's resourceVersion semantics: one counter for every write of every
// kind, each write recorded in a bounded history that watches replay from, and compaction that
// makes older versions answer 410 Expired. restart() keeps all of it, as etcd outlives the server.

import { ApiErrorCode, apiError } from "./errors.js";

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  managedFields?: unknown[];
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoredEvent {
  rv: number;
  type: EventType;
  /** storageKey() of the kind. */
  storage: string;
  object: KubeObject;
  /** The state before this write (MODIFIED), so filtered watches can tell entering from leaving. */
  previous?: KubeObject;
}

/**
 * Events kept for watches. kube-apiserver's watch cache keeps a window per kind (default 100
 * events, grown with load) and etcd keeps ~5 minutes; a test compacts explicitly to get a 410.
 */
export const DEFAULT_HISTORY_LIMIT = 10_000;

export class ObjectStore {
  private rv = 0;
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private history: StoredEvent[] = [];
  /** Versions up to this one are gone: a watch from an older one gets 410. */
  private compactedThrough = 0;
  private readonly listeners = new Set<(e: StoredEvent) => void>();

  constructor(private readonly historyLimit = DEFAULT_HISTORY_LIMIT) {}

  currentRv(): number {
    return this.rv;
  }

  get(storage: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.data.get(storage)?.get(keyOf(namespace, name));
    return obj === undefined ? undefined : structuredClone(obj);
  }

  /** Objects of a kind (in one namespace, or all), ordered by namespace then name as etcd keys sort. */
  list(storage: string, namespace?: string): KubeObject[] {
    return this.scan(storage, namespace).map((obj) => structuredClone(obj));
  }

  /**
   * The stored objects themselves, in list order, for a caller that filters and pages before it
   * copies: a paged list of 10,000 pods cloned all of them for every page of 500 (a second per page).
   * Never modify what this returns.
   */
  scan(storage: string, namespace?: string): readonly Readonly<KubeObject>[] {
    const bucket = this.data.get(storage);
    if (!bucket) return [];
    const keys = [...bucket.keys()].sort();
    const out: KubeObject[] = [];
    for (const key of keys) {
      const obj = bucket.get(key)!;
      if (namespace !== undefined && (obj.metadata.namespace ?? "") !== namespace) continue;
      out.push(obj);
    }
    return out;
  }

  /** Every kind that has objects, for garbage collection and namespace deletion. */
  storages(): string[] {
    return [...this.data.keys()];
  }

  /** Writes `obj` (new or replacing), stamping the next resourceVersion; returns the stored copy. */
  put(storage: string, obj: KubeObject, type: "ADDED" | "MODIFIED"): KubeObject {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    let bucket = this.data.get(storage);
    if (!bucket) {
      bucket = new Map();
      this.data.set(storage, bucket);
    }
    const key = keyOf(stored.metadata.namespace, stored.metadata.name!);
    const previous = bucket.get(key);
    bucket.set(key, stored);
    this.record({ rv: this.rv, type, storage, object: stored, ...(previous ? { previous } : {}) });
    return structuredClone(stored);
  }

  /** Removes an object; the DELETED event carries its last state at a new resourceVersion. */
  remove(storage: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const bucket = this.data.get(storage);
    const key = keyOf(namespace, name);
    const obj = bucket?.get(key);
    if (!bucket || !obj) return undefined;
    bucket.delete(key);
    obj.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, type: "DELETED", storage, object: obj });
    return structuredClone(obj);
  }

  /**
   * Events of a kind strictly after `rv`. Throws Expired when `rv` is older than the retained
   * history (the caller turns that into an ERROR event or an HTTP 410).
   */
  eventsAfter(storage: string, rv: number): StoredEvent[] {
    if (rv < this.compactedThrough) {
      throw apiError(ApiErrorCode.EXPIRED, `too old resource version: ${rv} (${this.compactedThrough + 1})`);
    }
    return this.history.filter((e) => e.rv > rv && e.storage === storage);
  }

  /** Drops history up to `throughRv` (default: everything so far), as etcd compaction does. */
  compact(throughRv = this.rv): void {
    this.compactedThrough = Math.max(this.compactedThrough, throughRv);
    this.history = this.history.filter((e) => e.rv > this.compactedThrough);
  }

  subscribe(listener: (e: StoredEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(event: StoredEvent): void {
    // Listeners and history share one frozen-by-convention copy: nobody mutates an event.
    const entry = { ...event, object: structuredClone(event.object) };
    this.history.push(entry);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedThrough = Math.max(this.compactedThrough, dropped.at(-1)!.rv);
    }
    for (const listener of this.listeners) listener(entry);
  }
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}
