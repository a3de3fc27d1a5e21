import { canonicalIp, ipFromBytes, parseIp } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { ProxyState, type StateChange } from "./proxy-state.js";
import { addresses, ip, policies, testPolicy, testService, testWorkload } from "./testing.js";
import { workloadIdentity } from "./workload.js";

const HOST = "echo.demo.svc.cluster.local";
const KEY = `demo/${HOST}`;

function mesh() {
  const state = new ProxyState();
  const changes: StateChange[] = [];
  state.onChange((c) => changes.push(c));
  const echo = testService({
    name: "echo",
    namespace: "demo",
    vips: ["10.96.0.10", "fd00::10"],
    ports: [80, { servicePort: 8080, targetPort: 0 }],
  });
  const a = testWorkload({
    name: "echo-a",
    namespace: "demo",
    ips: ["10.0.1.1"],
    node: "node-1",
    serviceAccount: "echo",
    services: {
      [KEY]: {
        ports: [
          { servicePort: 80, targetPort: 80 },
          { servicePort: 8080, targetPort: 9090 },
        ],
      },
    },
  });
  // No container port named for 8080: it does not serve that service port.
  const b = testWorkload({
    name: "echo-b",
    namespace: "demo",
    ips: ["10.0.2.1", "fd00::2:1"],
    node: "node-2",
    services: { [KEY]: { ports: [{ servicePort: 80, targetPort: 80 }] } },
  });
  const other = testWorkload({ name: "sleep", namespace: "demo", ips: ["10.0.1.2"], node: "node-1" });
  state.applyAddresses({ upserts: addresses(echo, a, b, other), removes: [] });
  return { state, changes, echo, a, b, other };
}

describe("IP text", () => {
  it("canonicalizes IPv6 spellings and unwraps IPv4-mapped addresses", () => {
    expect(canonicalIp("2001:DB8:0:0:0:0:0:1")).toBe("2001:db8::1");
    expect(canonicalIp("::ffff:10.0.0.1")).toBe("10.0.0.1");
    expect(canonicalIp("10.0.0.1")).toBe("10.0.0.1");
    expect(canonicalIp("10.0.0")).toBeUndefined();
    for (const text of ["10.0.0.1", "::1", "::", "2001:db8::1", "fe80::1:0:0:0", "1:2:3:4:5:6:7:8", "1::"]) {
      expect(ipFromBytes(parseIp(text)!)).toBe(text);
    }
    expect(ipFromBytes(parseIp("64:ff9b::1.2.3.4")!)).toBe("64:ff9b::102:304");
    expect(ipFromBytes(new Uint8Array(5))).toBeUndefined();
  });
});

describe("ProxyState indexes", () => {
  it("finds workloads by uid, by IP in any spelling, and by node", () => {
    const { state, a, b } = mesh();
    expect(state.workloadByUid(a.uid)).toBe(a);
    expect(state.workloadByIp("10.0.1.1")).toBe(a);
    expect(state.workloadByIp("::ffff:10.0.1.1")).toBe(a);
    expect(state.workloadByIp("FD00:0:0:0:0:0:2:1")).toBe(b);
    expect(state.workloadByIp("10.0.1.1", "other-network")).toBeUndefined();
    expect(state.workloadByIp("not an ip")).toBeUndefined();
    expect(state.localWorkloads("node-1").map((w) => w.name)).toEqual(["echo-a", "sleep"]);
    expect(state.localWorkloads("node-3")).toEqual([]);
  });

  it("finds services by VIP, hostname and key", () => {
    const { state, echo } = mesh();
    expect(state.serviceByVip("10.96.0.10")).toBe(echo);
    expect(state.serviceByVip("fd00::10")).toBe(echo);
    expect(state.serviceByHostname(HOST)).toBe(echo);
    expect(state.serviceByHostname("ECHO.demo.svc.cluster.local")).toBe(echo);
    expect(state.serviceByKey(KEY)).toBe(echo);
    expect(state.serviceByVip("10.96.0.11")).toBeUndefined();
  });

  it("prefers the client's namespace when two services share a hostname", () => {
    const state = new ProxyState();
    const first = testService({ name: "x", namespace: "a", hostname: "api.example.com" });
    const second = testService({ name: "x", namespace: "b", hostname: "api.example.com" });
    state.applyAddresses({ upserts: addresses(first, second) });
    expect(state.serviceByHostname("api.example.com")).toBe(first);
    expect(state.serviceByHostname("api.example.com", "b")).toBe(second);
    expect(state.serviceByHostname("api.example.com", "c")).toBe(first);
  });

  it("resolves endpoints with named target ports from the workload's port list", () => {
    const { state, echo, a, b } = mesh();
    expect(state.endpoints(echo).map((w) => w.name)).toEqual(["echo-a", "echo-b"]);
    expect(state.endpointsFor(echo, 80)).toEqual([
      { workload: a, targetPort: 80 },
      { workload: b, targetPort: 80 },
    ]);
    // 8080 targets a named port: only echo-a resolved it.
    expect(state.endpointsFor(echo, 8080)).toEqual([{ workload: a, targetPort: 9090 }]);
    expect(state.endpointsFor(echo, 443)).toEqual([]);
  });

  it("falls back to the service's numeric target port when a workload lists no mapping", () => {
    const state = new ProxyState();
    const svc = testService({ name: "web", ports: [{ servicePort: 80, targetPort: 8000 }] });
    const w = testWorkload({
      name: "web-1",
      ips: ["10.0.0.5"],
      services: { "default/web.default.svc.cluster.local": { ports: [] } },
    });
    state.applyAddresses({ upserts: addresses(svc, w) });
    expect(state.endpointsFor(svc, 80)).toEqual([{ workload: w, targetPort: 8000 }]);
  });

  it("re-indexes an updated workload and forgets everything of a removed one", () => {
    const { state, changes, echo, a } = mesh();
    const moved = { ...a, addresses: [ip("10.0.1.9")], node: "node-3", services: {} };
    state.applyAddresses({ upserts: addresses(moved) });
    expect(state.workloadByIp("10.0.1.1")).toBeUndefined();
    expect(state.workloadByIp("10.0.1.9")).toBe(moved);
    expect(state.localWorkloads("node-1").map((w) => w.name)).toEqual(["sleep"]);
    expect(state.endpointsFor(echo, 80).map((e) => e.workload.name)).toEqual(["echo-b"]);

    state.applyAddresses({ upserts: new Map(), removes: [a.uid, KEY, "no-such-name"] });
    expect(state.workloadByUid(a.uid)).toBeUndefined();
    expect(state.workloadByIp("10.0.1.9")).toBeUndefined();
    expect(state.serviceByVip("10.96.0.10")).toBeUndefined();
    expect(state.serviceByHostname(HOST)).toBeUndefined();
    expect(changes.at(-1)).toEqual({
      workloads: true,
      services: true,
      policies: false,
      removedWorkloads: [a.uid],
    });
  });

  it("keeps an IP's newest owner during pod churn and falls back when it leaves", () => {
    const state = new ProxyState();
    const old = testWorkload({ name: "old", ips: ["10.0.0.7"] });
    const fresh = testWorkload({ name: "fresh", ips: ["10.0.0.7"] });
    state.applyAddresses({ upserts: addresses(old) });
    state.applyAddresses({ upserts: addresses(fresh) });
    expect(state.workloadByIp("10.0.0.7")).toBe(fresh);
    state.applyAddresses({ upserts: new Map(), removes: [old.uid] });
    expect(state.workloadByIp("10.0.0.7")).toBe(fresh);
    state.applyAddresses({ upserts: new Map(), removes: [fresh.uid] });
    expect(state.workloadByIp("10.0.0.7")).toBeUndefined();
  });

  it("gives a workload its SPIFFE identity, with Istio's defaults for empty fields", () => {
    const { a } = mesh();
    expect(workloadIdentity(a).toString()).toBe("spiffe://cluster.local/ns/demo/sa/echo");
    const bare = testWorkload({ name: "x", namespace: "ns1", trustDomain: "", serviceAccount: "" });
    expect(workloadIdentity(bare).toString()).toBe("spiffe://cluster.local/ns/ns1/sa/default");
  });
});

describe("ProxyState policies", () => {
  it("selects GLOBAL, own-namespace NAMESPACE and listed WORKLOAD_SELECTOR policies", () => {
    const { state, a, other } = mesh();
    state.applyAuthorizations({
      upserts: policies(
        testPolicy({ name: "mesh-wide", namespace: "istio-system", scope: "GLOBAL" }),
        testPolicy({ name: "ns-wide", namespace: "demo", scope: "NAMESPACE" }),
        testPolicy({ name: "elsewhere", namespace: "prod", scope: "NAMESPACE" }),
        testPolicy({ name: "echo-only", namespace: "demo", scope: "WORKLOAD_SELECTOR", action: "DENY" }),
        testPolicy({ name: "unlisted", namespace: "demo", scope: "WORKLOAD_SELECTOR" }),
      ),
    });
    const selected = { ...a, authorizationPolicies: ["demo/echo-only", "demo/not-received-yet"] };
    const names = (w: typeof a) => state.policiesFor(w).map((p) => `${p.namespace}/${p.name}`);
    expect(names(selected)).toEqual(["istio-system/mesh-wide", "demo/ns-wide", "demo/echo-only"]);
    expect(names(other)).toEqual(["istio-system/mesh-wide", "demo/ns-wide"]);

    state.applyAuthorizations({ upserts: new Map(), removes: ["demo/ns-wide", "istio-system/mesh-wide"] });
    expect(names(selected)).toEqual(["demo/echo-only"]);
    expect(state.policyByKey("demo/ns-wide")).toBeUndefined();
  });

  it("re-files a policy whose scope changes", () => {
    const state = new ProxyState();
    const w = testWorkload({ name: "w", namespace: "demo" });
    state.applyAuthorizations({
      upserts: policies(testPolicy({ name: "p", namespace: "demo", scope: "NAMESPACE" })),
    });
    expect(state.policiesFor(w)).toHaveLength(1);
    state.applyAuthorizations({
      upserts: policies(testPolicy({ name: "p", namespace: "demo", scope: "WORKLOAD_SELECTOR" })),
    });
    expect(state.policiesFor(w)).toHaveLength(0);
  });

  it("reports a policy change when a workload's selected policies change", () => {
    const { state, changes, a } = mesh();
    state.applyAddresses({ upserts: addresses({ ...a, canonicalRevision: "v2" }) });
    expect(changes.at(-1)?.policies).toBe(false);
    state.applyAddresses({ upserts: addresses({ ...a, authorizationPolicies: ["demo/p"] }) });
    expect(changes.at(-1)).toMatchObject({ workloads: true, policies: true, removedWorkloads: [] });
    state.applyAuthorizations({ upserts: policies(testPolicy({ name: "p", namespace: "demo" })) });
    expect(changes.at(-1)).toEqual({
      workloads: false,
      services: false,
      policies: true,
      removedWorkloads: [],
    });
  });

  it("does not notify for a batch that changes nothing, and survives a throwing listener", () => {
    const errors: unknown[] = [];
    const state = new ProxyState({ onListenerError: (e) => errors.push(e) });
    const seen: StateChange[] = [];
    state.onChange(() => {
      throw new Error("listener bug");
    });
    const off = state.onChange((c) => seen.push(c));
    state.applyAddresses({ upserts: new Map(), removes: ["missing"] });
    expect(seen).toEqual([]);
    state.applyAddresses({ upserts: addresses(testWorkload({ name: "w" })) });
    expect(seen).toHaveLength(1);
    expect(errors).toHaveLength(1);
    off();
    state.applyAddresses({ upserts: addresses(testWorkload({ name: "v" })) });
    expect(seen).toHaveLength(1);
  });
});

describe("ProxyState snapshot", () => {
  it("dumps workloads, services with endpoints, and policies with IPs as text", () => {
    const { state, a } = mesh();
    state.applyAuthorizations({
      upserts: policies(
        testPolicy({
          name: "p",
          namespace: "demo",
          match: { sourceIps: [{ address: ip("10.0.0.0"), length: 8 }], principals: [{ exact: "x" }] },
        }),
      ),
    });
    const snap = state.snapshot();
    expect(snap.workloads.map((w) => w.name)).toEqual(["echo-a", "echo-b", "sleep"]);
    expect(snap.workloads.find((w) => w.uid === a.uid)).toMatchObject({
      addresses: ["10.0.1.1"],
      node: "node-1",
      services: {
        [KEY]: [
          { servicePort: 80, targetPort: 80 },
          { servicePort: 8080, targetPort: 9090 },
        ],
      },
    });
    expect(snap.workloads[1]?.addresses).toEqual(["10.0.2.1", "fd00::2:1"]);
    expect(snap.services).toEqual([
      expect.objectContaining({
        hostname: HOST,
        addresses: ["10.96.0.10", "fd00::10"],
        endpoints: ["Kubernetes//Pod/demo/echo-a", "Kubernetes//Pod/demo/echo-b"],
      }),
    ]);
    expect(snap.policies[0]?.rules[0]?.clauses[0]?.matches[0]).toMatchObject({
      sourceIps: ["10.0.0.0/8"],
      principals: [{ exact: "x" }],
    });
    // Round-trips through JSON unchanged: nothing in it is a byte array or a class.
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });
});
