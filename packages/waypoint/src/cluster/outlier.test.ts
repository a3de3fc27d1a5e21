import { describe, expect, it } from "vitest";
import type { LoadBalancerSpec, OutlierDetectionSpec } from "./destination-rule.js";
import type { EndpointInfo } from "./endpoint.js";
import { createBalancer } from "./load-balancer.js";
import { OutlierDetector, type OutlierEvent } from "./outlier.js";
import { resolveClusterPolicy } from "./policy.js";

const HOST = "reviews.default.svc.cluster.local";

function policyOf(outlierDetection: OutlierDetectionSpec, loadBalancer?: LoadBalancerSpec) {
  const trafficPolicy = { outlierDetection, ...(loadBalancer ? { loadBalancer } : {}) };
  const dr = { metadata: { name: "r", namespace: "default" }, spec: { host: HOST, trafficPolicy } };
  return resolveClusterPolicy([dr], HOST, 80).policy;
}

const uids = (n: number) => Array.from({ length: n }, (_, i) => `ep-${i + 1}`);

function setup(spec: OutlierDetectionSpec, hosts = 10) {
  const clock = { t: 0 };
  const events: OutlierEvent[] = [];
  const detector = new OutlierDetector(policyOf(spec).outlier!, () => clock.t, {
    hosts: uids(hosts),
    onEvent: (e) => events.push(e),
  });
  const fail = (uid: string, n: number, status = 500) => {
    for (let i = 0; i < n; i++) detector.record(uid, { status });
  };
  return { clock, events, detector, fail };
}

describe("OutlierDetector: detection", () => {
  it("ejects after 5 consecutive 5xx by default", () => {
    const { detector, events, fail } = setup({});
    fail("ep-1", 4);
    expect(detector.isEjected("ep-1")).toBe(false);
    fail("ep-1", 1, 503);
    expect(detector.isEjected("ep-1")).toBe(true);
    expect(events).toEqual([
      { type: "eject", uid: "ep-1", reason: "consecutive_5xx", at: 0, numEjections: 1, durationMs: 30_000 },
    ]);
    expect(detector.snapshot()).toMatchObject({ ejectionsActive: 1, stats: { ejectionsEnforcedTotal: 1 } });
  });

  it("a success resets the consecutive count", () => {
    const { detector, fail } = setup({});
    fail("ep-1", 4);
    detector.record("ep-1", { status: 200 });
    fail("ep-1", 4);
    expect(detector.isEjected("ep-1")).toBe(false);
    fail("ep-1", 1);
    expect(detector.isEjected("ep-1")).toBe(true);
  });

  it("counts connect failures as 5xx (split_external_local_origin_errors off)", () => {
    const { detector } = setup({ consecutive5xxErrors: 3 });
    for (let i = 0; i < 3; i++) detector.record("ep-2", { localOriginFailure: true });
    expect(detector.isEjected("ep-2")).toBe(true);
  });

  it("consecutive gateway errors count 502/503/504 only, when configured", () => {
    const { detector, events, fail } = setup({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3 });
    fail("ep-1", 2, 502);
    fail("ep-1", 1, 500);
    fail("ep-1", 2, 504);
    expect(detector.isEjected("ep-1")).toBe(false);
    detector.record("ep-1", { gatewayError: true });
    expect(detector.isEjected("ep-1")).toBe(true);
    expect(events[0]).toMatchObject({ type: "eject", reason: "consecutive_gateway_failure" });
    // 5xx alone never ejects when consecutive5xxErrors is 0.
    fail("ep-2", 50, 500);
    expect(detector.isEjected("ep-2")).toBe(false);
  });

  it("with split local-origin errors, connect failures have their own count and 5xx theirs", () => {
    const { detector, events } = setup({
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailures: 2,
    });
    for (let i = 0; i < 4; i++) detector.record("ep-1", { status: 500 });
    detector.record("ep-1", { localOriginFailure: true });
    expect(detector.isEjected("ep-1")).toBe(false);
    detector.record("ep-1", { localOriginFailure: true });
    expect(events[0]).toMatchObject({
      type: "eject",
      uid: "ep-1",
      reason: "consecutive_local_origin_failure",
    });
  });

  it("ignores endpoints it does not know", () => {
    const { detector, fail } = setup({});
    fail("nope", 10);
    expect(detector.isEjected("nope")).toBe(false);
  });
});

describe("OutlierDetector: limits", () => {
  it("respects maxEjectionPercent (default 10%: one of ten endpoints)", () => {
    const { detector, events, fail } = setup({}, 10);
    fail("ep-1", 5);
    fail("ep-2", 5);
    expect(detector.isEjected("ep-1")).toBe(true);
    expect(detector.isEjected("ep-2")).toBe(false);
    expect(events.map((e) => e.type)).toEqual(["eject", "overflow"]);
    expect(detector.snapshot().stats.ejectionsOverflow).toBe(1);
    // After an overflow the count starts again, as in Envoy.
    expect(detector.snapshot().hosts.find((h) => h.uid === "ep-2")?.consecutive5xx).toBe(0);
  });

  it("never ejects below ten endpoints at the default 10% (Envoy does not round up to one)", () => {
    const { detector, fail } = setup({}, 5);
    fail("ep-1", 5);
    expect(detector.isEjected("ep-1")).toBe(false);
  });

  it("ejects up to the configured share", () => {
    const { detector, fail } = setup({ maxEjectionPercent: 50 }, 4);
    for (const uid of ["ep-1", "ep-2", "ep-3"]) fail(uid, 5);
    expect(["ep-1", "ep-2", "ep-3"].map((u) => detector.isEjected(u))).toEqual([true, true, false]);
  });

  it("forgets removed endpoints, freeing their share", () => {
    const { detector, fail } = setup({ maxEjectionPercent: 50 }, 2);
    fail("ep-1", 5);
    detector.setHosts(["ep-2", "ep-3"]);
    fail("ep-2", 5);
    expect(detector.isEjected("ep-2")).toBe(true);
    expect(detector.snapshot().hosts.map((h) => h.uid)).toEqual(["ep-2", "ep-3"]);
  });

  it("minHealthPercent: below it the balancer panics and uses ejected endpoints again", () => {
    const policy = policyOf({ maxEjectionPercent: 100, minHealthPercent: 50 }, { simple: "ROUND_ROBIN" });
    const detector = new OutlierDetector(policy.outlier!, () => 0, { hosts: uids(3) });
    const endpoints: EndpointInfo[] = uids(3).map((uid, i) => ({
      uid,
      address: `10.0.0.${i + 1}`,
      port: 80,
      labels: {},
      healthy: true,
    }));
    const lb = createBalancer(policy.lb, { random: () => 0 });
    const state = { isEjected: (uid: string) => detector.isEjected(uid) };
    for (let i = 0; i < 5; i++) detector.record("ep-1", { status: 500 });
    // 2 of 3 in (67% ≥ 50%): the ejected endpoint is skipped.
    const healthy = Array.from({ length: 6 }, () => lb.pick(endpoints, {}, state)!);
    expect(healthy.some((p) => p.endpoint.uid === "ep-1" || p.panic)).toBe(false);
    for (let i = 0; i < 5; i++) detector.record("ep-2", { status: 500 });
    // 1 of 3 in (33% < 50%): panic, all three are eligible.
    const panicked = Array.from({ length: 6 }, () => lb.pick(endpoints, {}, state)!);
    expect(panicked.every((p) => p.panic)).toBe(true);
    expect(new Set(panicked.map((p) => p.endpoint.uid)).size).toBe(3);
  });
});

describe("OutlierDetector: ejection time", () => {
  it("returns an endpoint at the first interval sweep after baseEjectionTime", () => {
    const { clock, detector, events, fail } = setup({});
    clock.t = 5_000;
    fail("ep-1", 5);
    expect(detector.snapshot().hosts[0]).toMatchObject({
      ejected: true,
      ejectedAt: 5_000,
      returnsAt: 40_000,
    });
    clock.t = 35_000;
    expect(detector.isEjected("ep-1")).toBe(true);
    clock.t = 39_999;
    expect(detector.isEjected("ep-1")).toBe(true);
    clock.t = 40_000;
    expect(detector.isEjected("ep-1")).toBe(false);
    expect(events.at(-1)).toEqual({ type: "uneject", uid: "ep-1", at: 40_000, numEjections: 1 });
    // Its counts start from zero again.
    fail("ep-1", 4);
    expect(detector.isEjected("ep-1")).toBe(false);
  });

  it("multiplies the ejection time by the ejection count and caps it at 300 s", () => {
    const { clock, detector, events, fail } = setup({});
    const durations: number[] = [];
    for (let i = 0; i < 12; i++) {
      fail("ep-1", 5);
      const ejection = events.at(-1);
      expect(ejection?.type).toBe("eject");
      durations.push(ejection?.type === "eject" ? ejection.durationMs : 0);
      clock.t = detector.snapshot().hosts[0]!.returnsAt!;
      expect(detector.isEjected("ep-1")).toBe(false);
    }
    expect(durations).toEqual([30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300].map((s) => s * 1000));
  });

  it("lets the multiplier decay by one per interval the endpoint stays in", () => {
    const { clock, detector, events, fail } = setup({});
    for (let i = 0; i < 3; i++) {
      fail("ep-1", 5);
      clock.t = detector.snapshot().hosts[0]!.returnsAt!;
      detector.tick();
    }
    expect(detector.snapshot().hosts[0]?.ejectionMultiplier).toBe(3);
    // Two full intervals in service: 3 → 1, so the next ejection lasts 2 × 30 s.
    clock.t += 20_000;
    expect(detector.snapshot().hosts[0]?.ejectionMultiplier).toBe(1);
    fail("ep-1", 5);
    expect(events.at(-1)).toMatchObject({ type: "eject", numEjections: 4, durationMs: 60_000 });
  });

  it("honours a base ejection time above 300 s as the cap", () => {
    const { detector, events, fail } = setup({ baseEjectionTime: "10m" });
    fail("ep-1", 5);
    expect(events[0]).toMatchObject({ durationMs: 600_000 });
    expect(detector.policy.maxEjectionTimeMs).toBe(600_000);
  });
});
