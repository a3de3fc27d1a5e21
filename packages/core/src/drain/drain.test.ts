import { describe, expect, it } from "vitest";
import { Drain } from "./drain.js";

describe("Drain", () => {
  it("asks open connections to finish, and counts those that did", async () => {
    const drain = new Drain();
    const calls: boolean[] = [];
    const handle = drain.track((graceful) => {
      calls.push(graceful);
      if (graceful) setTimeout(() => handle.release(), 5);
    });
    const result = await drain.start(1_000);
    expect(result).toEqual({ drained: 1, forced: 0 });
    expect(calls).toEqual([true]);
    expect(drain.signal.aborted).toBe(true);
  });

  it("forces connections still open at the deadline", async () => {
    const drain = new Drain();
    const calls: boolean[] = [];
    drain.track((graceful) => calls.push(graceful));
    const result = await drain.start(20);
    expect(result).toEqual({ drained: 0, forced: 1 });
    expect(calls).toEqual([true, false]);
  });

  it("tells a connection that opens during the drain to finish at once", async () => {
    const drain = new Drain();
    const started = drain.start(20);
    const calls: boolean[] = [];
    const h = drain.track((graceful) => calls.push(graceful));
    h.release();
    await started;
    expect(calls).toEqual([true]);
  });
});
