// One kind, kept in step with the API server the way client-go's reflector does it: list (paged),
// then watch from the list's resourceVersion, resuming from the last version seen whenever a
// watch ends. A 410 Gone (the version was compacted) means relist, and the relist is diffed
// against what we hold, so no change is lost or delivered twice. Any other failure (API server
// down, 5xx, a watch that went silent past the watchdog) waits with backoff and resumes.

import type { Logger } from "@ambient/core";
import { Backoff } from "@ambient/core";
import type { KubeConfig } from "@kubernetes/client-node";
import type { KubeObject } from "../model/index.js";
import { ApiError, getJson, type ResourceRef, resourcePath, watchStream } from "./http.js";

export type ReflectorEvent = "ADDED" | "MODIFIED" | "DELETED";

export interface ReflectorOptions {
  kc: KubeConfig;
  resource: ResourceRef;
  logger: Logger;
  fieldSelector?: string;
  labelSelector?: string;
  /** Called for every change, in order; after a relist, for the differences only. */
  onEvent(type: ReflectorEvent, object: KubeObject): void;
  /** Called after each complete list (the first one and every relist). */
  onListed?(): void;
  /** Reported when the API server stops or starts answering this reflector. */
  onHealth?(healthy: boolean, reason: string): void;
  /**
   * A watch that delivers nothing (not even a bookmark) for this long is dropped and resumed:
   * client-go users report watches that go silent without an error. Default 60 s; the API server
   * sends a bookmark about every minute on quiet watches, and we ask for bookmarks.
   */
  watchdogMs?: number;
  /** Page size of a list (client-go's reflector pages by 500). */
  pageSize?: number;
  backoff?: { initialMs?: number; maxMs?: number };
}

/** Server-side watch lifetime, randomized as client-go does (5–10 min) so watches do not renew in step. */
const WATCH_TIMEOUT_S = [300, 600] as const;
const DEFAULT_WATCHDOG_MS = 60_000;
const DEFAULT_PAGE_SIZE = 500;
// client-go's reflector backs off from 800 ms to 30 s; the DESIGN's CA client uses 0.5 s → 150 s.
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 };
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

export class Reflector {
  private readonly items = new Map<string, KubeObject>();
  private resourceVersion = "";
  private stopped = false;
  private healthy = true;
  private running: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private readonly backoff: Backoff;
  private relistRequested = false;
  /** Resolved after the next complete list: `start` and `relist` wait on it. */
  private listWaiters: Array<() => void> = [];
  private reportedAbsent = false;

  private readonly absentRetryMs: number;

  constructor(private readonly o: ReflectorOptions) {
    const b = { ...DEFAULT_BACKOFF, ...o.backoff };
    this.backoff = new Backoff(b.initialMs, b.maxMs);
    this.absentRetryMs = b.maxMs;
  }

  /** Starts the loop; resolves after the first successful list. */
  start(): Promise<void> {
    const first = this.nextList();
    this.running = this.loop();
    return first;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.running;
  }

  /** Lists again now (a caller must catch up: a CNI ADD for a pod the watch has not delivered). */
  relist(): Promise<void> {
    const listed = this.nextList();
    this.relistRequested = true;
    this.abort?.abort();
    this.wake?.();
    return listed;
  }

  private nextList(): Promise<void> {
    return new Promise((resolve) => this.listWaiters.push(resolve));
  }

  get size(): number {
    return this.items.size;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.resourceVersion || this.relistRequested) {
          this.relistRequested = false;
          if (!(await this.list())) {
            // Not served (yet): a CRD installed later is picked up on a later try.
            await this.sleep(this.absentRetryMs);
            continue;
          }
        }
        await this.watch();
        this.backoff.reset();
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof ApiError && err.status === 410) {
          this.o.logger.info(
            { resource: this.o.resource.plural },
            "watch resourceVersion expired; relisting",
          );
          this.resourceVersion = "";
          continue;
        }
        if (this.relistRequested) continue;
        this.setHealthy(false, describe(err));
        await this.sleep(this.backoff.next());
      }
    }
  }

  /** One complete (paged) list, diffed into what we hold; false when the server does not serve the kind. */
  private async list(): Promise<boolean> {
    const seen = new Map<string, KubeObject>();
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await getJson<KubeList>(this.o.kc, resourcePath(this.o.resource), {
        limit: String(this.o.pageSize ?? DEFAULT_PAGE_SIZE),
        ...(cont ? { continue: cont } : {}),
        ...(this.o.fieldSelector ? { fieldSelector: this.o.fieldSelector } : {}),
        ...(this.o.labelSelector ? { labelSelector: this.o.labelSelector } : {}),
      }).catch((err) => {
        // A kind the server does not serve (its CRD is not installed yet) lists as empty.
        if (err instanceof ApiError && err.status === 404) return { items: [], metadata: {} } as KubeList;
        throw err;
      });
      for (const item of page.items ?? []) seen.set(keyOf(item), this.normalize(item));
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? "";
    } while (cont);
    // Diff against what we hold: the relist after a 410 or an outage delivers exactly the changes.
    for (const [key, old] of this.items) {
      if (!seen.has(key)) {
        this.items.delete(key);
        this.o.onEvent("DELETED", old);
      }
    }
    for (const [key, obj] of seen) {
      const old = this.items.get(key);
      if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) continue;
      this.items.set(key, obj);
      this.o.onEvent(old ? "MODIFIED" : "ADDED", obj);
    }
    this.resourceVersion = rv;
    this.setHealthy(true, "listed");
    this.o.onListed?.();
    for (const resolve of this.listWaiters.splice(0)) resolve();
    if (rv) {
      this.reportedAbsent = false;
      return true;
    }
    if (!this.reportedAbsent) {
      this.reportedAbsent = true;
      this.o.logger.info(
        { resource: resourcePath(this.o.resource) },
        "the API server does not serve this kind (CRD not installed?); retrying until it does",
      );
    }
    return false;
  }

  /** One watch, from the last version seen, until the server ends it or it fails. */
  private async watch(): Promise<void> {
    const [min, max] = WATCH_TIMEOUT_S;
    this.abort = new AbortController();
    if (this.stopped || this.relistRequested) return;
    await watchStream(
      this.o.kc,
      resourcePath(this.o.resource),
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: "true",
        timeoutSeconds: String(min + Math.floor(Math.random() * (max - min))),
        ...(this.o.fieldSelector ? { fieldSelector: this.o.fieldSelector } : {}),
        ...(this.o.labelSelector ? { labelSelector: this.o.labelSelector } : {}),
      },
      (event) =>
        this.apply(event.type, event.object as unknown as KubeObject & { code?: number; message?: string }),
      {
        signal: this.abort.signal,
        idleMs: this.o.watchdogMs ?? DEFAULT_WATCHDOG_MS,
        // The server answered: it is back, even if nothing changed since.
        onOpen: () => this.setHealthy(true, "watching"),
      },
    );
  }

  private apply(type: string, obj: KubeObject & { code?: number; message?: string }): void {
    if (type === "ERROR") throw new ApiError(obj.code ?? 500, obj.message ?? "watch error");
    const rv = (obj?.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    if (typeof rv === "string" && rv) this.resourceVersion = rv;
    if (type === "BOOKMARK") return;
    this.setHealthy(true, "watching");
    const key = keyOf(obj);
    if (type === "DELETED") {
      const old = this.items.get(key);
      this.items.delete(key);
      this.o.onEvent("DELETED", old ?? obj);
    } else if (type === "ADDED" || type === "MODIFIED") {
      const normalized = this.normalize(obj);
      const known = this.items.has(key);
      this.items.set(key, normalized);
      this.o.onEvent(known ? "MODIFIED" : "ADDED", normalized);
    }
  }

  /**
   * managedFields and kubectl's last-applied-configuration (a second copy of the whole object) are
   * the bulk of an object and nothing here reads them; the annotation would also travel to waypoints
   * inside every L7 resource, which then differed from the same object read from a folder.
   */
  private normalize(obj: KubeObject): KubeObject {
    const { managedFields: _, ...metadata } = obj.metadata as KubeObject["metadata"] & {
      managedFields?: unknown;
    };
    if (metadata.annotations && LAST_APPLIED in metadata.annotations) {
      const { [LAST_APPLIED]: _last, ...annotations } = metadata.annotations;
      if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
      else delete metadata.annotations;
    }
    const apiVersion = obj.apiVersion || apiVersionOf(this.o.resource);
    return { ...obj, apiVersion, kind: obj.kind || this.o.resource.kind, metadata };
  }

  private setHealthy(healthy: boolean, reason: string): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.o.onHealth?.(healthy, reason);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

interface KubeList {
  items?: KubeObject[];
  metadata?: { resourceVersion?: string; continue?: string };
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

function apiVersionOf(r: ResourceRef): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

function describe(err: unknown): string {
  if (err instanceof ApiError) return `HTTP ${err.status}: ${err.message}`;
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
