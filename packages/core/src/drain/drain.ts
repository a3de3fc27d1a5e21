// Graceful drain: on shutdown, stop accepting, signal every open connection that it should finish,
// and wait for them to close up to a deadline. Connections register a handle; the drain resolves
// when the count reaches zero or the deadline passes (then the rest are forced closed).

export interface DrainHandle {
  /** Call when the connection or stream has finished. */
  release(): void;
}

export interface DrainResult {
  /** Connections that finished on their own. */
  drained: number;
  /** Connections still open at the deadline and force-closed. */
  forced: number;
}

type Closer = (graceful: boolean) => void;

export class Drain {
  private readonly open = new Map<number, Closer>();
  private nextId = 0;
  private draining = false;
  private waiters: (() => void)[] = [];
  private readonly abort = new AbortController();

  /** Aborted when a drain starts: listeners stop accepting. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * Registers an open connection. `close(graceful)` is called with `true` when drain starts (finish
   * politely, e.g. HTTP/2 GOAWAY) and with `false` at the deadline (destroy).
   */
  track(close: Closer): DrainHandle {
    const id = this.nextId++;
    this.open.set(id, close);
    if (this.draining) close(true);
    return {
      release: () => {
        if (this.open.delete(id) && this.open.size === 0) this.notify();
      },
    };
  }

  async start(deadlineMs: number): Promise<DrainResult> {
    this.draining = true;
    this.abort.abort(new Error("draining"));
    const total = this.open.size;
    for (const close of [...this.open.values()]) close(true);
    if (this.open.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const forced = this.open.size;
    for (const close of [...this.open.values()]) close(false);
    this.open.clear();
    return { drained: total - forced, forced };
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
