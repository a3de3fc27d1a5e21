import type { LoadBalancing, Locality, Service, Workload } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { ProxyState } from "./proxy-state.js";
import { addresses, testService, testWorkload } from "./testing.js";

const KEY = "demo/echo.demo.svc.cluster.local";
// What our control plane sends for trafficDistribution PreferClose and PreferSameNode.
const PREFER_CLOSE: LoadBalancing = {
  routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE"],
  mode: "FAILOVER",
};
const PREFER_NODE: LoadBalancing = {
  routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE", "NODE"],
  mode: "FAILOVER",
};

function endpoint(name: string, ip: string, p: Partial<Workload> = {}): Workload {
  return testWorkload({
    name,
    namespace: "demo",
    ips: [ip],
    services: { [KEY]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    ...p,
  });
}

const zone = (region: string, z: string): Locality => ({ region, zone: z, subzone: "" });

function setup(loadBalancing?: LoadBalancing, ...workloads: Workload[]) {
  const state = new ProxyState();
  const svc: Service = testService({ name: "echo", namespace: "demo", vips: ["10.96.0.1"], ports: [80] });
  if (loadBalancing) svc.loadBalancing = loadBalancing;
  state.applyAddresses({ upserts: addresses(svc, ...workloads) });
  const pickNames = (n: number, opts = {}) =>
    Array.from({ length: n }, () => state.pickEndpoint(svc, 80, opts)?.workload.name);
  return { state, svc, pickNames };
}

describe("pickEndpoint", () => {
  it("round robins over healthy endpoints with the resolved target port", () => {
    const { state, svc, pickNames } = setup(
      undefined,
      endpoint("a", "10.0.0.1"),
      endpoint("b", "10.0.0.2"),
      endpoint("c", "10.0.0.3", { status: "UNHEALTHY" }),
      endpoint("d", "10.0.0.4"),
    );
    expect(pickNames(6)).toEqual(["a", "b", "d", "a", "b", "d"]);
    expect(state.pickEndpoint(svc, 80)?.targetPort).toBe(8080);
    expect(state.pickEndpoint(svc, 81)).toBeUndefined();
  });

  it("picks DNS endpoints (a hostname, no address) and skips endpoints with neither", () => {
    const { pickNames } = setup(
      undefined,
      endpoint("dns", "10.0.0.1", { addresses: [], hostname: "api.example.com", tunnelProtocol: "NONE" }),
      endpoint("nowhere", "10.0.0.2", { addresses: [] }),
    );
    expect(pickNames(3)).toEqual(["dns", "dns", "dns"]);
  });

  it("keeps round robin state per service", () => {
    const state = new ProxyState();
    const one = testService({ name: "one", namespace: "demo", ports: [80] });
    const two = testService({ name: "two", namespace: "demo", ports: [80] });
    const both = (name: string, ip: string) =>
      testWorkload({
        name,
        namespace: "demo",
        ips: [ip],
        services: {
          "demo/one.demo.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 80 }] },
          "demo/two.demo.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 80 }] },
        },
      });
    state.applyAddresses({ upserts: addresses(one, two, both("x", "10.0.0.1"), both("y", "10.0.0.2")) });
    expect(state.pickEndpoint(one, 80)?.workload.name).toBe("x");
    expect(state.pickEndpoint(two, 80)?.workload.name).toBe("x");
    expect(state.pickEndpoint(one, 80)?.workload.name).toBe("y");
  });

  it("returns undefined when no endpoint is healthy or none has an address", () => {
    const { pickNames } = setup(undefined, endpoint("down", "10.0.0.1", { status: "UNHEALTHY" }), {
      ...endpoint("nowhere", "10.0.0.2"),
      addresses: [],
    });
    expect(pickNames(1)).toEqual([undefined]);
  });

  it("follows endpoint health changes", () => {
    const a = endpoint("a", "10.0.0.1");
    const b = endpoint("b", "10.0.0.2");
    const { state, pickNames } = setup(undefined, a, b);
    state.applyAddresses({ upserts: addresses({ ...a, status: "UNHEALTHY" }) });
    expect(pickNames(3)).toEqual(["b", "b", "b"]);
    state.applyAddresses({ upserts: new Map(), removes: [b.uid] });
    expect(pickNames(1)).toEqual([undefined]);
  });

  it("PreferClose: the source's zone first, then the region, then anywhere", () => {
    const source = testWorkload({ name: "client", namespace: "demo", locality: zone("r1", "z1") });
    const sameZone = endpoint("same-zone", "10.0.0.1", { locality: zone("r1", "z1") });
    const sameRegion = endpoint("same-region", "10.0.0.2", { locality: zone("r1", "z2") });
    const far = endpoint("far", "10.0.0.3", { locality: zone("r2", "z9") });
    const { state, pickNames } = setup(PREFER_CLOSE, sameZone, sameRegion, far);
    const opts = { sourceWorkload: source };
    expect(new Set(pickNames(4, opts))).toEqual(new Set(["same-zone"]));
    state.applyAddresses({ upserts: addresses({ ...sameZone, status: "UNHEALTHY" }) });
    expect(new Set(pickNames(4, opts))).toEqual(new Set(["same-region"]));
    state.applyAddresses({ upserts: new Map(), removes: [sameRegion.uid] });
    expect(new Set(pickNames(4, opts))).toEqual(new Set(["far"]));
    // A client that gives no locality cannot be closer to one endpoint than another.
    state.applyAddresses({ upserts: addresses(sameZone) });
    expect(new Set(pickNames(4))).toEqual(new Set(["same-zone", "far"]));
  });

  it("PreferSameNode works from the node alone when the source workload is unknown", () => {
    const here = endpoint("here", "10.0.0.1", { node: "node-1" });
    const there = endpoint("there", "10.0.0.2", { node: "node-2" });
    const { pickNames } = setup(PREFER_NODE, here, there);
    expect(new Set(pickNames(4, { sourceNode: "node-1" }))).toEqual(new Set(["here"]));
    expect(new Set(pickNames(4, { sourceNode: "node-3" }))).toEqual(new Set(["here", "there"]));
  });

  it("STRICT: only endpoints matching every preferred scope, else none", () => {
    const strict: LoadBalancing = { routingPreference: ["NODE"], mode: "STRICT" };
    const here = endpoint("here", "10.0.0.1", { node: "node-1" });
    const there = endpoint("there", "10.0.0.2", { node: "node-2" });
    const { state, pickNames } = setup(strict, here, there);
    const source = testWorkload({ name: "client", namespace: "demo", node: "node-1" });
    expect(new Set(pickNames(4, { sourceWorkload: source }))).toEqual(new Set(["here"]));
    state.applyAddresses({ upserts: new Map(), removes: [here.uid] });
    expect(pickNames(1, { sourceWorkload: source })).toEqual([undefined]);
  });

  it("ignores routing preferences under PASSTHROUGH", () => {
    const passthrough: LoadBalancing = { routingPreference: ["NODE"], mode: "PASSTHROUGH" };
    const here = endpoint("here", "10.0.0.1", { node: "node-1" });
    const there = endpoint("there", "10.0.0.2", { node: "node-2" });
    const { pickNames } = setup(passthrough, here, there);
    const source = testWorkload({ name: "client", namespace: "demo", node: "node-1" });
    expect(new Set(pickNames(4, { sourceWorkload: source }))).toEqual(new Set(["here", "there"]));
  });

  it("treats a different network as farthest under FAILOVER", () => {
    const source = testWorkload({ name: "client", namespace: "demo", network: "net-a" });
    const local = endpoint("local", "10.0.0.1", { network: "net-a" });
    const remote = endpoint("remote", "10.0.0.2", { network: "net-b" });
    const { pickNames } = setup(PREFER_CLOSE, local, remote);
    expect(new Set(pickNames(4, { sourceWorkload: source }))).toEqual(new Set(["local"]));
  });
});
