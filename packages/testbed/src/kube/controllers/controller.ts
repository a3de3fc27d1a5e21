// The loop every controller here runs, as kube-controller-manager's do: a reflector per kind it
// reads (KubeApiSource: list, watch, relist on 410, watchdog), one sync at a time over the whole
// cache, started again by any change or by a timer a sync asks for (minReadySeconds, a pod that
// becomes available later). Writes go through the API only, so every effect is seen by the watch.

import type { Logger } from "@ambient/core";
import type { KindInfo, KubeObject } from "@ambient/kube";
import { KubeApiSource, type KubeConfig } from "@ambient/kube/api";
import type { KubeClient } from "../client.js";

export interface ControllerDeps {
  kc: KubeConfig;
  client: KubeClient;
  logger: Logger;
  /** Tests: a quicker watchdog and backoff for the reflectors. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

/** A sync that failed (a write refused, the API server away) is tried again after this. */
const RETRY_MS = 1_000;

export abstract class Controller {
  protected readonly source: KubeApiSource;
  protected readonly log: Logger;
  private syncing: Promise<void> = Promise.resolve();
  private pending = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly name: string,
    kinds: readonly KindInfo[],
    protected readonly d: ControllerDeps,
  ) {
    this.log = d.logger.child({ component: name });
    this.source = new KubeApiSource(d.kc, {
      logger: this.log,
      kinds,
      // Controllers read kinds the mesh's validator does not know (ReplicaSet, ControllerRevision).
      validate: (obj) => ({ ok: true, object: obj as KubeObject }),
      batchMs: 10,
      ...(d.reflector ? { reflector: d.reflector } : {}),
    });
  }

  async start(): Promise<void> {
    this.source.onChange(() => this.kick());
    await this.source.start();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.source.stop();
    await this.syncing;
  }

  /** The cached objects of one kind. */
  protected list<T extends KubeObject = KubeObject>(kind: string): T[] {
    return this.source.objects().filter((o) => o.kind === kind) as T[];
  }

  /** Sync again after `ms` (the earliest asked for wins). */
  protected requeueAfter(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, ms));
    this.timer.unref();
  }

  protected abstract sync(): Promise<void>;

  private kick(): void {
    if (this.stopped) return;
    if (this.pending) return;
    this.pending = true;
    this.syncing = this.syncing.then(async () => {
      this.pending = false;
      if (this.stopped) return;
      try {
        await this.sync();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "sync failed; retrying");
        this.requeueAfter(RETRY_MS);
      }
    });
  }
}
