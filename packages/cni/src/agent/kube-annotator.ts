// The redirection annotation in a cluster, written as Istio's CNI agent writes it: a JSON merge
// patch of the pod's status subresource (the agent's RBAC grants pods/status patch, not pods
// update), `null` to remove it. Writes leave the agent's queue at once and are applied here in
// order, the latest wish per pod winning, and retried with backoff while the API server is away.

import { Backoff, errorMessage, findCode, type Logger } from "@ambient/core";
import { type PodAnnotator, REDIRECTION_ANNOTATION } from "./annotations.js";

export interface KubeAnnotatorOptions {
  /** A JSON merge patch of `path` (`@ambient/kube/api`'s mergePatch); rejects with `status` on a non-2xx. */
  patch(path: string, body: unknown): Promise<void>;
  /** The pod's annotations as the watch last saw them: a write that would change nothing is skipped. */
  observed?(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
}

interface Wish {
  namespace: string;
  name: string;
  /** The value of our annotation; undefined removes it. */
  value: string | undefined;
}

// A restarting API server is back within seconds; a longer outage needs no tighter loop than this.
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 };

export class KubeAnnotator implements PodAnnotator {
  private readonly pending = new Map<string, Wish>();
  /** What this process last wrote per pod, so a lagging watch never hides a needed write. */
  private readonly written = new Map<string, string | undefined>();
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private running = false;
  private retry: NodeJS.Timeout | undefined;
  private failing = false;
  private closed = false;

  constructor(private readonly o: KubeAnnotatorOptions) {
    const b = o.backoff ?? DEFAULT_BACKOFF;
    this.backoff = new Backoff(b.initialMs, b.maxMs);
    this.log = o.logger.child({ component: "annotator" });
  }

  set(namespace: string, name: string, annotations: Record<string, string> | undefined): void {
    if (this.closed) return;
    this.pending.set(`${namespace}/${name}`, {
      namespace,
      name,
      value: annotations?.[REDIRECTION_ANNOTATION],
    });
    if (!this.retry) void this.drain();
  }

  /** Stops retrying; writes not yet made are dropped (a restarted agent re-marks every pod it enrols). */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.pending.clear();
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.first(); next && !this.closed; next = this.first()) {
        const [key, wish] = next;
        this.pending.delete(key);
        if (this.unchanged(key, wish)) continue;
        try {
          await this.write(wish);
          this.written.set(key, wish.value);
          this.recovered();
        } catch (err) {
          if ((err as { status?: number }).status === 404) {
            // The pod is gone: there is nothing left to mark.
            this.written.delete(key);
            continue;
          }
          // A newer wish for the pod, if one came meanwhile, wins; else this one is retried.
          if (!this.pending.has(key)) this.pending.set(key, wish);
          this.failed(key, err);
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private first(): [string, Wish] | undefined {
    return this.pending.entries().next().value;
  }

  private unchanged(key: string, wish: Wish): boolean {
    const seen = this.o.observed?.(wish.namespace, wish.name)?.[REDIRECTION_ANNOTATION];
    return seen === wish.value && (!this.written.has(key) || this.written.get(key) === wish.value);
  }

  private write(wish: Wish): Promise<void> {
    const path = `/api/v1/namespaces/${encodeURIComponent(wish.namespace)}/pods/${encodeURIComponent(wish.name)}/status`;
    return this.o.patch(path, {
      metadata: { annotations: { [REDIRECTION_ANNOTATION]: wish.value ?? null } },
    });
  }

  private failed(key: string, err: unknown): void {
    const delayMs = this.backoff.next();
    if (!this.failing) {
      // One line per outage, not one per pod and retry.
      this.failing = true;
      this.log.warn(
        { pod: key, code: findCode(err), retryInMs: delayMs },
        `cannot annotate pods: ${errorMessage(err)}; retrying`,
      );
    }
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.drain();
    }, delayMs);
    this.retry.unref();
  }

  private recovered(): void {
    this.backoff.reset();
    if (!this.failing) return;
    this.failing = false;
    this.log.info("annotating pods again");
  }
}
