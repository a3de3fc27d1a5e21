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

/**
 * A second, trailing reload this long after the last event. chokidar drops a 'change' that comes
 * within 50 ms of the previous one for the same file, and holds an 'unlink' back 100 ms to turn
 * delete + re-create into one 'change' (its `atomic` mode): a write in those windows may bring no
 * event of its own after the reload the first event triggered has already read the file. The
 * trailing reload picks it up; when nothing changed it costs one stat per file.
 */
export const WATCH_SETTLE_MS = 150;

export class FolderWatcher {
  private watcher: FSWatcher | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly trigger: ReturnType<typeof debounce>;
  private readonly settle: ReturnType<typeof debounce>;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => Promise<void>,
    private readonly logger: Logger,
  ) {
    // Reloads are serialized: a burst during a reload schedules exactly one more.
    const reload = () => {
      this.running = this.running
        .then(() => this.onChange())
        .catch((err) => this.logger.error({ err }, "reload failed"));
    };
    this.trigger = debounce(reload, WATCH_DEBOUNCE_MS);
    this.settle = debounce(reload, WATCH_SETTLE_MS);
  }

  async start(): Promise<void> {
    this.watcher = watch(this.dir, {
      ignoreInitial: true,
      ignored: (path) => /(^|[/\\])\.[^/\\]+$/.test(path.slice(this.dir.length)),
      awaitWriteFinish: false,
    });
    this.watcher.on("all", () => {
      this.trigger();
      this.settle();
    });
    this.watcher.on("error", (err) => this.logger.warn({ err }, "watching manifests folder failed"));
    await new Promise<void>((resolve) => this.watcher!.once("ready", () => resolve()));
  }

  async stop(): Promise<void> {
    this.trigger.cancel();
    this.settle.cancel();
    await this.watcher?.close();
    await this.running;
  }
}
