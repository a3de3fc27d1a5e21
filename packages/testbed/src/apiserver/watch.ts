// Watches: newline-delimited `{type, object}` events. From a resourceVersion, only what happened
// strictly after it (no synthetic ADDs); without one (or "0"), ADDED for what exists, then live.
// A compacted version ends in an ERROR event carrying a 410 Expired Status. BOOKMARKs only when
// asked for; selectors turn an object that stops or starts matching into DELETED or ADDED.

import type { ServerResponse } from "node:http";
import { hasCode } from "@ambient/core";
import { ApiErrorCode, apiError, badRequest, toStatus } from "./errors.js";
import type { ResourceType } from "./resources.js";
import { groupVersion, storageKey } from "./resources.js";
import type { EventType, KubeObject, ObjectStore, StoredEvent } from "./store.js";

export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  matches: (obj: KubeObject) => boolean;
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  /** Encodes an object for this client (a Table row for kubectl, the object otherwise). */
  encode: (obj: KubeObject, type: EventType) => unknown;
}

export interface WatchOptions {
  /** kube-apiserver sends bookmarks about once a minute; tests shorten it. */
  bookmarkIntervalMs: number;
  /** kube-apiserver: a random time between --min-request-timeout (1800 s) and twice that. */
  defaultTimeoutSeconds: number;
}

interface OpenWatch {
  res: ServerResponse;
  close: () => void;
  expire: () => void;
  /** Stalled: sends nothing more, ever. */
  dead: boolean;
}

export class WatchHub {
  private readonly open = new Set<OpenWatch>();
  private stall = false;

  /**
   * Fault: the watches open now, and those opened while it lasts, send nothing more (no events,
   * no bookmarks) and never end, as over a connection a proxy or NAT dropped silently: what they
   * miss never arrives on them, even after the fault ends. Watches opened afterwards are healthy.
   */
  get stalled(): boolean {
    return this.stall;
  }

  set stalled(on: boolean) {
    this.stall = on;
    if (on) for (const w of this.open) w.dead = true;
  }

  constructor(
    private readonly store: ObjectStore,
    private readonly options: WatchOptions,
  ) {}

  count(): number {
    return this.open.size;
  }

  serve(req: WatchRequest, res: ServerResponse): void {
    const storage = storageKey(req.type);
    const inScope = (obj: KubeObject) =>
      (req.namespace === undefined || obj.metadata.namespace === req.namespace) && req.matches(obj);
    const write = (type: string, object: unknown) => {
      if (!watch.dead && !res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const bookmark = (extra: Record<string, string> = {}) =>
      write("BOOKMARK", {
        kind: req.type.kind,
        apiVersion: groupVersion(req.type),
        metadata: {
          resourceVersion: String(this.store.currentRv()),
          ...(Object.keys(extra).length ? { annotations: extra } : {}),
        },
      });
    const send = (e: StoredEvent) => {
      const type = visibleAs(e, inScope);
      if (type) write(type, req.encode(withVersion(req.type, e.object), type));
    };

    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, private" });
    res.flushHeaders();
    // serve() runs to the end without yielding, so subscribing after the backlog loses nothing.
    let unsubscribe = () => {};
    const watch: OpenWatch = {
      res,
      dead: this.stall,
      close: () => finish(),
      expire: () => {
        write("ERROR", toStatus(expiredError()));
        finish();
      },
    };
    this.open.add(watch);
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      this.open.delete(watch);
      if (!res.writableEnded) res.end();
    };
    res.on("close", finish);

    let fromRv: number;
    const rv = req.resourceVersion;
    if (rv === undefined || rv === "" || rv === "0" || req.sendInitialEvents) {
      fromRv = this.store.currentRv();
      for (const obj of this.store.list(storage, req.namespace)) {
        if (req.matches(obj)) write("ADDED", req.encode(withVersion(req.type, obj), "ADDED"));
      }
      if (req.sendInitialEvents && req.allowBookmarks) bookmark({ "k8s.io/initial-events-end": "true" });
    } else {
      fromRv = Number(rv);
      if (!Number.isInteger(fromRv) || fromRv < 0) {
        write("ERROR", toStatus(badRequest(`invalid resourceVersion "${rv}"`)));
        finish();
        return;
      }
      try {
        for (const e of this.store.eventsAfter(storage, fromRv)) send(e);
      } catch (err) {
        if (!hasCode(err, ApiErrorCode.EXPIRED)) throw err;
        write("ERROR", toStatus(err));
        finish();
        return;
      }
    }
    unsubscribe = this.store.subscribe((e) => {
      if (e.storage === storage && e.rv > fromRv) send(e);
    });

    const timeout = req.timeoutSeconds ?? this.options.defaultTimeoutSeconds;
    timers.push(setTimeout(finish, timeout * 1000));
    if (req.allowBookmarks) {
      const tick = () => {
        bookmark();
        timers.push(setTimeout(tick, this.options.bookmarkIntervalMs));
      };
      timers.push(setTimeout(tick, this.options.bookmarkIntervalMs));
    }
  }

  /** Fault: every open watch gets ERROR 410 Expired and ends, as after an etcd compaction. */
  expireAll(): void {
    for (const w of [...this.open]) w.expire();
  }

  /** Every open watch ends (restart, stop); clients see the stream close. */
  closeAll(): void {
    for (const w of [...this.open]) {
      w.close();
      w.res.socket?.destroy();
    }
  }
}

/** How an event looks through a selector: entering is ADDED, leaving is DELETED. */
function visibleAs(e: StoredEvent, matches: (o: KubeObject) => boolean): EventType | undefined {
  const now = matches(e.object);
  if (e.type === "ADDED") return now ? "ADDED" : undefined;
  if (e.type === "DELETED") return now ? "DELETED" : undefined;
  const before = e.previous !== undefined && matches(e.previous);
  if (before && now) return "MODIFIED";
  if (now) return "ADDED";
  if (before) return "DELETED";
  return undefined;
}

function withVersion(type: ResourceType, obj: KubeObject): KubeObject {
  return { ...obj, apiVersion: groupVersion(type), kind: type.kind };
}

function expiredError(): Error {
  return apiError(ApiErrorCode.EXPIRED, "The resourceVersion for the provided watch is too old.");
}
