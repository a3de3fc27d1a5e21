// Follows a manifests folder: file-system events are collapsed (editors write in bursts: temp
// file, rename, chmod) and each burst triggers one reload. Changes show up well within a second.

import { debounce, type Logger } from "@ambient/core";
import { type FSWatcher, watch } from "chokidar";

/** Quiet time after the last event before reloading: long enough to merge an editor's save burst. */
export const WATCH_DEBOUNCE_MS = 100;

export class FolderWatcher {
  private watcher: FSWatcher | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly trigger: ReturnType<typeof debounce>;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => Promise<void>,
    private readonly logger: Logger,
  ) {
    // Reloads are serialized: a burst during a reload schedules exactly one more.
    this.trigger = debounce(() => {
      this.running = this.running
        .then(() => this.onChange())
        .catch((err) => this.logger.error({ err }, "reload failed"));
    }, WATCH_DEBOUNCE_MS);
  }

  async start(): Promise<void> {
    this.watcher = watch(this.dir, {
      ignoreInitial: true,
      ignored: (path) => /(^|[/\\])\.[^/\\]+$/.test(path.slice(this.dir.length)),
      awaitWriteFinish: false,
    });
    this.watcher.on("all", () => this.trigger());
    this.watcher.on("error", (err) => this.logger.warn({ err }, "watching manifests folder failed"));
    await new Promise<void>((resolve) => this.watcher!.once("ready", () => resolve()));
  }

  async stop(): Promise<void> {
    this.trigger.cancel();
    await this.watcher?.close();
    await this.running;
  }
}
