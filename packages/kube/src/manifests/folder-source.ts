// A manifests folder as an ObjectSource: the last-good store re-reads changed files, the watcher
// turns file-system bursts into one refresh, and listeners hear about it only when the set of
// objects in force changed.

import type { Logger } from "@ambient/core";
import type { KubeObject } from "../model/index.js";
import type { ObjectSource, SourceProblem } from "../source.js";
import type { ObjectValidator } from "../validate/index.js";
import { ManifestStore } from "./store.js";
import { FolderWatcher } from "./watcher.js";

export interface FolderSourceOptions {
  logger: Logger;
  validate?: ObjectValidator;
  /** Follow edits (default true); false reads the folder only on `start` and `refresh`. */
  watch?: boolean;
}

export class FolderSource implements ObjectSource {
  private readonly store: ManifestStore;
  private readonly watcher: FolderWatcher | undefined;
  private readonly listeners = new Set<() => void>();
  // Refreshes are serialized: the watcher and an explicit refresh never read the folder at once.
  private refreshing: Promise<boolean> = Promise.resolve(false);

  constructor(
    readonly dir: string,
    private readonly opts: FolderSourceOptions,
  ) {
    this.store = new ManifestStore(dir, opts.logger, opts.validate);
    if (opts.watch !== false)
      this.watcher = new FolderWatcher(dir, () => this.refresh().then(() => undefined), opts.logger);
  }

  async start(): Promise<void> {
    await this.refresh();
    await this.watcher?.start();
  }

  async stop(): Promise<void> {
    await this.watcher?.stop();
    await this.refreshing;
  }

  refresh(): Promise<boolean> {
    this.refreshing = this.refreshing.then(async () => {
      const { changed } = await this.store.reload();
      if (changed) this.emit();
      return changed;
    });
    return this.refreshing;
  }

  objects(): readonly KubeObject[] {
    return this.store.objects();
  }

  problems(): readonly SourceProblem[] {
    return this.store.problems();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.opts.logger.error({ err }, "object source listener failed");
      }
    }
  }
}
