import { hasCode, WaypointErrorCode } from "@ambient/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RequestClock } from "./timers.js";

describe("RequestClock", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires the stream idle timeout only after a quiet period, saying whether the request was complete", () => {
    const clock = new RequestClock(1_000);
    vi.advanceTimersByTime(900);
    clock.touch();
    vi.advanceTimersByTime(900);
    expect(clock.signal.aborted).toBe(false);
    vi.advanceTimersByTime(200);
    expect(hasCode(clock.signal.reason, WaypointErrorCode.IDLE_TIMEOUT)).toBe(true);
    expect(clock.signal.reason.details).toEqual({ requestComplete: false });
  });

  it("starts the route timeout when the request is complete, not before (Envoy's global timeout)", () => {
    const clock = new RequestClock(60_000);
    clock.setRouteTimeout(500);
    vi.advanceTimersByTime(2_000);
    expect(clock.signal.aborted).toBe(false);
    clock.requestDone();
    vi.advanceTimersByTime(499);
    expect(clock.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(hasCode(clock.signal.reason, WaypointErrorCode.UPSTREAM_TIMEOUT)).toBe(true);
    clock.dispose();
  });

  it("aborts one attempt at its per-try timeout while the request goes on", () => {
    const clock = new RequestClock(60_000);
    clock.requestDone();
    const attempt = clock.attempt(300);
    vi.advanceTimersByTime(300);
    expect(attempt.signal.reason.details).toEqual({ perTry: true });
    expect(clock.signal.aborted).toBe(false);
    attempt.dispose();
    clock.dispose();
  });

  it("stops the route timeout once the connection switched protocols", () => {
    const clock = new RequestClock(60_000);
    clock.setRouteTimeout(500);
    clock.requestDone();
    clock.upgraded();
    vi.advanceTimersByTime(10_000);
    expect(clock.signal.aborted).toBe(false);
    clock.dispose();
  });
});
