import type { Service, Workload } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { type MeshLookup, Router } from "./resolve.js";

const ip = (s: string) => Uint8Array.from(s.split(".").map(Number));

function workload(name: string, addr: string, extra: Partial<Workload> = {}): Workload {
  return {
    uid: `Kubernetes//Pod/demo/${name}`,
    name,
    namespace: "demo",
    addresses: [ip(addr)],
    network: "",
    tunnelProtocol: "HBONE",
    trustDomain: "cluster.local",
    serviceAccount: name,
    node: "node-1",
    canonicalName: name,
    canonicalRevision: "latest",
    workloadType: "POD",
    workloadName: name,
    authorizationPolicies: [],
    status: "HEALTHY",
    clusterId: "Kubernetes",
    hostname: "",
    services: {},
    ...extra,
  };
}

const web = workload("web", "127.10.2.20");
const legacy = workload("legacy", "127.10.2.30", { tunnelProtocol: "NONE" });
const wp = workload("waypoint", "127.10.2.40");
const svc: Service = {
  name: "web",
  namespace: "demo",
  hostname: "web.demo.svc.cluster.local",
  addresses: [{ network: "", address: ip("127.10.100.1") }],
  ports: [{ servicePort: 80, targetPort: 8080 }],
  subjectAltNames: [],
};
const waypointed: Service = {
  ...svc,
  name: "api",
  hostname: "api.demo.svc.cluster.local",
  addresses: [{ network: "", address: ip("127.10.100.2") }],
  waypoint: { address: { network: "", address: ip("127.10.2.40") }, hboneMtlsPort: 15008 },
};
const empty: Service = {
  ...svc,
  name: "empty",
  hostname: "empty.demo.svc.cluster.local",
  addresses: [{ network: "", address: ip("127.10.100.3") }],
};

const mesh: MeshLookup = {
  workloadByIp: (a) => [web, legacy, wp].find((w) => w.addresses.some((b) => b.join(".") === a)),
  serviceByVip: (a) => [svc, waypointed, empty].find((s) => s.addresses[0]!.address.join(".") === a),
  serviceByHostname: (h) => [svc, waypointed, empty].find((s) => s.hostname === h),
  serviceByKey: () => undefined,
  pickEndpoint: (s, port) => (s === svc && port === 80 ? { workload: web, targetPort: 8080 } : undefined),
};
const router = new Router(mesh, async (name) => {
  if (name === "example.test") return "127.99.0.1";
  throw new Error("ENOTFOUND");
});

describe("Router", () => {
  it("routes a service VIP to a healthy endpoint over HBONE with podIP:targetPort as authority", async () => {
    const r = await router.route(undefined, { host: "127.10.100.1", port: 80 });
    expect(r).toMatchObject({
      kind: "hbone",
      hboneAddress: { host: "127.10.2.20", port: 15008 },
      authority: "127.10.2.20:8080",
      expectedIdentities: ["spiffe://cluster.local/ns/demo/sa/web"],
    });
  });

  it("routes a service name the same way, case-insensitively and with a trailing dot", async () => {
    const r = await router.route(undefined, { host: "Web.demo.svc.cluster.local.", port: 80 });
    expect(r).toMatchObject({ kind: "hbone", authority: "127.10.2.20:8080" });
  });

  it("routes a pod IP to that workload", async () => {
    expect(await router.route(undefined, { host: "127.10.2.20", port: 9000 })).toMatchObject({
      kind: "hbone",
      authority: "127.10.2.20:9000",
    });
  });

  it("passes through to workloads outside the mesh and to unknown addresses", async () => {
    expect(await router.route(undefined, { host: "127.10.2.30", port: 80 })).toMatchObject({
      kind: "passthrough",
      host: "127.10.2.30",
    });
    expect(await router.route(undefined, { host: "127.50.0.1", port: 80 })).toEqual({
      kind: "passthrough",
      host: "127.50.0.1",
      port: 80,
    });
    expect(await router.route(undefined, { host: "example.test", port: 443 })).toEqual({
      kind: "passthrough",
      host: "127.99.0.1",
      port: 443,
    });
  });

  it("sends traffic for a service with a waypoint to the waypoint, keeping VIP:port as authority", async () => {
    const r = await router.route(web, { host: "api.demo.svc.cluster.local", port: 80 });
    expect(r).toMatchObject({
      kind: "waypoint",
      hboneAddress: { host: "127.10.2.40", port: 15008 },
      authority: "127.10.100.2:80",
      expectedIdentities: ["spiffe://cluster.local/ns/demo/sa/waypoint"],
    });
  });

  it("sends service traffic to an endpoint with its own waypoint through that waypoint, addressed to the pod", async () => {
    const owned = {
      ...web,
      waypoint: { address: { network: "", address: ip("127.10.2.40") }, hboneMtlsPort: 15008 },
    };
    const router2 = new Router({ ...mesh, pickEndpoint: () => ({ workload: owned, targetPort: 8080 }) });
    expect(await router2.route(undefined, { host: "127.10.100.1", port: 80 })).toMatchObject({
      kind: "waypoint",
      hboneAddress: { host: "127.10.2.40", port: 15008 },
      authority: "127.10.2.20:8080",
    });
  });

  it("does not send the waypoint's own traffic back to itself", async () => {
    await expect(router.route(wp, { host: "api.demo.svc.cluster.local", port: 80 })).rejects.toMatchObject({
      code: "AMB_PROXY_NO_HEALTHY_UPSTREAM",
    });
  });

  it("fails with typed errors for unknown mesh names and services without endpoints", async () => {
    await expect(
      router.route(undefined, { host: "nope.demo.svc.cluster.local", port: 80 }),
    ).rejects.toMatchObject({
      code: "AMB_PROXY_NO_ROUTE",
      message: "no service named nope.demo.svc.cluster.local in the mesh",
    });
    await expect(router.route(undefined, { host: "127.10.100.3", port: 80 })).rejects.toMatchObject({
      code: "AMB_PROXY_NO_HEALTHY_UPSTREAM",
    });
    await expect(router.route(undefined, { host: "missing.test", port: 80 })).rejects.toMatchObject({
      code: "AMB_PROXY_NO_ROUTE",
    });
  });
});
