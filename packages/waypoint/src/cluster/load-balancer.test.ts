import { describe, expect, it } from "vitest";
import type { EndpointInfo } from "./endpoint.js";
import { selectSubset } from "./endpoint.js";
import { createBalancer, type PickContext, type PickState } from "./load-balancer.js";
import type { HashKey, LbPolicy } from "./policy.js";

function endpoint(i: number, extra: Partial<EndpointInfo> = {}): EndpointInfo {
  return { uid: `ep-${i}`, address: `10.0.0.${i}`, port: 8080, labels: {}, healthy: true, ...extra };
}

const eps = (n: number) => Array.from({ length: n }, (_, i) => endpoint(i + 1));

/** Deterministic uniform numbers (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const simple = (
  type: "LEAST_REQUEST" | "ROUND_ROBIN" | "RANDOM" | "PASSTHROUGH",
  panicThresholdPercent = 0,
): LbPolicy => ({
  type,
  panicThresholdPercent,
});

const hashed = (hashKey: HashKey): LbPolicy => ({
  type: "CONSISTENT_HASH",
  hashKey,
  algorithm: "RING_HASH",
  minimumRingSize: 1024,
  tableSize: 65_537,
  panicThresholdPercent: 0,
});

describe("host eligibility", () => {
  it("skips unready and ejected endpoints; none left means undefined (503 UH)", () => {
    const lb = createBalancer(simple("ROUND_ROBIN"), { random: () => 0 });
    const list = [endpoint(1, { healthy: false }), endpoint(2), endpoint(3)];
    const state: PickState = { isEjected: (uid) => uid === "ep-2" };
    for (let i = 0; i < 5; i++) expect(lb.pick(list, {}, state)?.endpoint.uid).toBe("ep-3");
    expect(lb.pick(list, {}, { isEjected: () => true })).toBeUndefined();
    expect(lb.pick([endpoint(1, { healthy: false })])).toBeUndefined();
    expect(lb.pick([])).toBeUndefined();
  });

  it("panics below minHealthPercent: ejected endpoints become eligible again, unready ones never", () => {
    const list = [...eps(3), endpoint(4, { healthy: false })];
    const state: PickState = { isEjected: (uid) => uid !== "ep-1" };
    // 1 of 3 ready endpoints is in: 33% < 50% → panic, all three ready ones are used.
    const panicky = createBalancer(simple("ROUND_ROBIN", 50), { random: () => 0 });
    const picked = Array.from({ length: 6 }, () => panicky.pick(list, {}, state)!);
    expect(picked.every((p) => p.panic)).toBe(true);
    expect(new Set(picked.map((p) => p.endpoint.uid))).toEqual(new Set(["ep-1", "ep-2", "ep-3"]));
    // 33% ≥ 30%: no panic, only the endpoint that is in.
    const calm = createBalancer(simple("ROUND_ROBIN", 30), { random: () => 0 });
    for (let i = 0; i < 3; i++)
      expect(calm.pick(list, {}, state)).toEqual({ endpoint: list[0], panic: false });
    // Threshold 0 never panics, even with everything ejected.
    expect(
      createBalancer(simple("ROUND_ROBIN", 0)).pick(list, {}, { isEjected: () => true }),
    ).toBeUndefined();
  });

  it("selects a subset by labels", () => {
    const list = [
      endpoint(1, { labels: { version: "v1" } }),
      endpoint(2, { labels: { version: "v2", app: "r" } }),
    ];
    expect(selectSubset(list, { version: "v2" }).map((e) => e.uid)).toEqual(["ep-2"]);
    expect(selectSubset(list, undefined)).toHaveLength(2);
  });
});

describe("simple policies", () => {
  it("ROUND_ROBIN walks the endpoints in order from its start offset", () => {
    const list = eps(3);
    const lb = createBalancer(simple("ROUND_ROBIN"), { random: () => 0 });
    const order = Array.from({ length: 7 }, () => lb.pick(list)!.endpoint.uid);
    expect(order).toEqual(["ep-1", "ep-2", "ep-3", "ep-1", "ep-2", "ep-3", "ep-1"]);
  });

  it("LEAST_REQUEST prefers the idle endpoint", () => {
    const active = new Map([
      ["ep-1", 5],
      ["ep-2", 0],
    ]);
    const state: PickState = { activeRequests: (uid) => active.get(uid) ?? 0 };
    const lb = createBalancer(simple("LEAST_REQUEST"), { random: seeded(1) });
    for (let i = 0; i < 20; i++) expect(lb.pick(eps(2), {}, state)!.endpoint.uid).toBe("ep-2");
  });

  it("LEAST_REQUEST with many endpoints (power of two choices) rarely picks the busy ones", () => {
    const list = eps(10);
    const state: PickState = { activeRequests: (uid) => (uid === "ep-1" ? 0 : 10) };
    const lb = createBalancer(simple("LEAST_REQUEST"), { random: seeded(2) });
    let idle = 0;
    for (let i = 0; i < 2000; i++) if (lb.pick(list, {}, state)!.endpoint.uid === "ep-1") idle++;
    // P(ep-1 among two samples of ten) = 1 - 0.9² = 19%, versus 10% for a blind pick.
    expect(idle / 2000).toBeGreaterThan(0.15);
    expect(idle / 2000).toBeLessThan(0.23);
  });

  it("RANDOM spreads roughly evenly", () => {
    const list = eps(4);
    const lb = createBalancer(simple("RANDOM"), { random: seeded(3) });
    const counts = new Map<string, number>();
    for (let i = 0; i < 8000; i++) {
      const uid = lb.pick(list)!.endpoint.uid;
      counts.set(uid, (counts.get(uid) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });

  it("PASSTHROUGH goes to the original destination, else the first endpoint", () => {
    const lb = createBalancer(simple("PASSTHROUGH"));
    expect(lb.pick(eps(3), { originalDestination: { address: "10.0.0.2" } })!.endpoint.uid).toBe("ep-2");
    expect(lb.pick(eps(3))!.endpoint.uid).toBe("ep-1");
  });
});

describe("consistent hash", () => {
  const keys = Array.from({ length: 300 }, (_, i) => `user-${i}`);

  function assignments(
    policy: LbPolicy,
    list: EndpointInfo[],
    ctx: (key: string) => PickContext,
  ): Map<string, string> {
    const lb = createBalancer(policy, { random: seeded(4) });
    return new Map(keys.map((k) => [k, lb.pick(list, ctx(k))!.endpoint.uid]));
  }

  const cases: { name: string; key: HashKey; ctx: (k: string) => PickContext }[] = [
    { name: "header", key: { kind: "header", name: "x-user" }, ctx: (k) => ({ headers: { "x-user": k } }) },
    {
      name: "cookie",
      key: { kind: "cookie", name: "session", attributes: [] },
      ctx: (k) => ({ headers: { cookie: `theme=dark; session="${k}"` } }),
    },
    {
      name: "source IP",
      key: { kind: "sourceIp" },
      ctx: (k) => ({ sourceIp: `192.168.${k.length}.${k.slice(5)}` }),
    },
    {
      name: "query parameter",
      key: { kind: "queryParameter", name: "u" },
      ctx: (k) => ({ path: `/p?a=1&u=${k}` }),
    },
  ];

  for (const c of cases) {
    it(`is sticky on the ${c.name}, across balancer instances`, () => {
      const first = assignments(hashed(c.key), eps(5), c.ctx);
      const again = assignments(hashed(c.key), eps(5).reverse(), c.ctx);
      expect(again).toEqual(first);
      // Every endpoint gets a share.
      expect(new Set(first.values()).size).toBe(5);
    });
  }

  it("moves only the keys of a removed (or ejected) endpoint", () => {
    const key: HashKey = { kind: "header", name: "x-user" };
    const ctx = (k: string): PickContext => ({ headers: { "x-user": k } });
    const before = assignments(hashed(key), eps(5), ctx);
    const after = assignments(
      hashed(key),
      eps(5).filter((e) => e.uid !== "ep-3"),
      ctx,
    );
    let moved = 0;
    for (const k of keys) {
      if (before.get(k) === "ep-3") {
        expect(after.get(k)).not.toBe("ep-3");
        moved++;
      } else {
        expect(after.get(k)).toBe(before.get(k));
      }
    }
    expect(moved).toBeGreaterThan(0);

    const lb = createBalancer(hashed(key));
    const ejected: PickState = { isEjected: (uid) => uid === "ep-3" };
    for (const k of keys) {
      const uid = lb.pick(eps(5), ctx(k), ejected)!.endpoint.uid;
      expect(uid).toBe(after.get(k));
    }
  });

  it("generates the cookie when absent and a ttl is set; the cookie then maps to the same endpoint", () => {
    const policy = hashed({
      kind: "cookie",
      name: "session",
      path: "/",
      ttlMs: 3_600_000,
      attributes: [{ name: "SameSite", value: "Lax" }],
    });
    const lb = createBalancer(policy);
    const first = lb.pick(eps(5), { sourceIp: "10.1.1.1", sourcePort: 41000 })!;
    expect(first.setCookie).toMatch(
      /^session="[0-9a-f]{16}"; Max-Age=3600; Path=\/; SameSite=Lax; HttpOnly$/,
    );
    const value = /"([0-9a-f]{16})"/.exec(first.setCookie!)![1];
    const next = lb.pick(eps(5), { headers: { cookie: `session=${value}` } })!;
    expect(next.setCookie).toBeUndefined();
    expect(next.endpoint).toEqual(first.endpoint);
  });

  it("sets a session cookie for ttl 0 and none without a ttl", () => {
    const session = createBalancer(hashed({ kind: "cookie", name: "s", ttlMs: 0, attributes: [] }));
    expect(session.pick(eps(2), { sourceIp: "10.1.1.1" })!.setCookie).toMatch(/^s="[0-9a-f]{16}"; HttpOnly$/);
    const none = createBalancer(hashed({ kind: "cookie", name: "s", attributes: [] }));
    expect(none.pick(eps(2), { sourceIp: "10.1.1.1" })!.setCookie).toBeUndefined();
  });

  it("picks at random when the request has no key", () => {
    const lb = createBalancer(hashed({ kind: "header", name: "x-user" }), { random: seeded(5) });
    const seen = new Set(Array.from({ length: 200 }, () => lb.pick(eps(4), { headers: {} })!.endpoint.uid));
    expect(seen.size).toBe(4);
  });
});
