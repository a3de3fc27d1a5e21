import { describe, expect, it } from "vitest";
import { Backoff } from "./timers.js";

describe("Backoff", () => {
  it("doubles from the initial delay to the cap and resets", () => {
    const b = new Backoff(500, 150_000, 0);
    const seq = Array.from({ length: 11 }, () => b.next());
    expect(seq.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
    expect(seq.at(-1)).toBe(150_000);
    b.reset();
    expect(b.next()).toBe(500);
  });

  it("keeps jitter within its spread", () => {
    const b = new Backoff(1000, 1000, 0.1);
    for (let i = 0; i < 50; i++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(900);
      expect(d).toBeLessThanOrEqual(1100);
    }
  });
});
