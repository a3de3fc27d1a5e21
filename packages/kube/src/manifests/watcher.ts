// Follows a manifests folder: file-system events are collapsed (editors write in bursts: temp
// file, rename, chmod) and each burst triggers one reload. Changes show up well within a second.

import { debounce, type Logger } from "@ambient/core";
import { type FSWatcher, watch } from "chokidar";

/**
 * Quiet time after the last event before reloading. An editor's save burst (write a temp file,
 * rename, chmod) lands within a few milliseconds, so 20 ms still merges it; it was 100 ms, which
 * once the control plane translated edits incrementally was most of an edit's latency. Not
 * leading-edge: reloading on the first event would read half-written files and report them as
 * broken before the rest of the burst repaired them. A reload that does overlap a later write is
 * followed by another one (the watcher serializes them), so nothing is missed either way.
 */
export const WATCH_DEBOUNCE_MS = 20;

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
