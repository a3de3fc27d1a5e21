import type { LoadBalancing, Service, Workload } from "@ambient/core";
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

// ServiceEntries with `resolution: NONE`, as Istio sends them: PASSTHROUGH, with the entry's
// addresses (real external IPs) as VIPs, or none.
const passthrough: LoadBalancing = { routingPreference: [], mode: "PASSTHROUGH" };
const external: Service = {
  ...svc,
  name: "httpbin.example",
  namespace: "egress",
  hostname: "httpbin.example",
  addresses: [{ network: "", address: ip("127.10.100.4") }],
  loadBalancing: passthrough,
};
const externalWaypointed: Service = {
  ...external,
  hostname: "waypointed.example",
  addresses: [
    { network: "", address: ip("127.10.100.5") },
    { network: "", address: ip("127.10.100.6") },
  ],
  waypoint: waypointed.waypoint!,
};
const externalNoVip: Service = { ...external, hostname: "novip.example", addresses: [] };
const services = [svc, waypointed, empty, external, externalWaypointed, externalNoVip];

const mesh: MeshLookup = {
  workloadByIp: (a) => [web, legacy, wp].find((w) => w.addresses.some((b) => b.join(".") === a)),
  serviceByVip: (a) => services.find((s) => s.addresses.some((v) => v.address.join(".") === a)),
  serviceByHostname: (h) => services.find((s) => s.hostname === h),
  serviceByKey: () => undefined,
  pickEndpoint: (s, port) => {
    if (s.loadBalancing?.mode === "PASSTHROUGH") throw new Error("PASSTHROUGH picks no endpoint");
    return s === svc && port === 80 ? { workload: web, targetPort: 8080 } : undefined;
  },
};
const DNS: Record<string, string> = {
  "example.test": "127.99.0.1",
  "novip.example": "127.99.0.2",
  "db.example": "127.99.0.3",
};
const resolveName = async (name: string) => {
  const found = DNS[name];
  if (found) return found;
  throw new Error(`getaddrinfo ENOTFOUND ${name}`);
};
const router = new Router(mesh, resolveName);

/** A ServiceEntry endpoint with `resolution: DNS`: a hostname, no address. */
const dnsEndpoint = (hostname: string, extra: Partial<Workload> = {}) =>
  workload("db", "0.0.0.0", { addresses: [], hostname, tunnelProtocol: "NONE", ...extra });
const routerPicking = (endpoint: Workload) =>
  new Router({ ...mesh, pickEndpoint: () => ({ workload: endpoint, targetPort: 5432 }) }, resolveName);

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

  it("passes a PASSTHROUGH service's traffic to the address dialed, naming the service", async () => {
    expect(await router.route(web, { host: "127.10.100.4", port: 8443 })).toEqual({
      kind: "passthrough",
      host: "127.10.100.4",
      port: 8443,
      service: external,
    });
    // Dialed by name: the entry's address, its VIP.
    expect(await router.route(web, { host: "httpbin.example", port: 80 })).toEqual({
      kind: "passthrough",
      host: "127.10.100.4",
      port: 80,
      service: external,
    });
  });

  it("resolves the name of a PASSTHROUGH service without a VIP through DNS", async () => {
    expect(await router.route(web, { host: "novip.example", port: 443 })).toEqual({
      kind: "passthrough",
      host: "127.99.0.2",
      port: 443,
      service: externalNoVip,
    });
    const noDns = new Router(mesh, async () => {
      throw new Error("getaddrinfo ENOTFOUND novip.example");
    });
    await expect(noDns.route(web, { host: "novip.example", port: 443 })).rejects.toMatchObject({
      code: "AMB_PROXY_NO_ROUTE",
      message: "cannot resolve novip.example: getaddrinfo ENOTFOUND novip.example",
    });
  });

  it("sends a PASSTHROUGH service with a waypoint to the waypoint, addressed to the VIP dialed", async () => {
    // Each of the entry's addresses is a destination of its own: the waypoint forwards to this one.
    for (const [host, authority] of [
      ["127.10.100.6", "127.10.100.6:80"],
      ["127.10.100.5", "127.10.100.5:80"],
      ["waypointed.example", "127.10.100.5:80"],
    ] as const) {
      expect(await router.route(web, { host, port: 80 })).toMatchObject({
        kind: "waypoint",
        hboneAddress: { host: "127.10.2.40", port: 15008 },
        authority,
        service: externalWaypointed,
      });
    }
  });

  it("resolves a DNS endpoint's hostname at connect time and passes through to it", async () => {
    const db = dnsEndpoint("db.example");
    expect(await routerPicking(db).route(web, { host: "127.10.100.1", port: 80 })).toEqual({
      kind: "passthrough",
      host: "127.99.0.3",
      port: 5432,
      destination: db,
      service: svc,
    });
  });

  it("tunnels to a DNS endpoint that speaks HBONE at its resolved address", async () => {
    const db = dnsEndpoint("db.example", { tunnelProtocol: "HBONE" });
    expect(await routerPicking(db).route(web, { host: "127.10.100.1", port: 80 })).toMatchObject({
      kind: "hbone",
      hboneAddress: { host: "127.99.0.3", port: 15008 },
      authority: "127.99.0.3:5432",
      expectedIdentities: ["spiffe://cluster.local/ns/demo/sa/db"],
    });
  });

  it("fails a DNS endpoint whose hostname does not resolve as no healthy upstream, naming it", async () => {
    await expect(
      routerPicking(dnsEndpoint("gone.example")).route(web, { host: "127.10.100.1", port: 80 }),
    ).rejects.toMatchObject({
      code: "AMB_PROXY_NO_HEALTHY_UPSTREAM",
      message:
        "cannot resolve gone.example (endpoint of web.demo.svc.cluster.local): getaddrinfo ENOTFOUND gone.example",
    });
    await expect(
      routerPicking(dnsEndpoint("")).route(web, { host: "127.10.100.1", port: 80 }),
    ).rejects.toMatchObject({
      code: "AMB_PROXY_NO_HEALTHY_UPSTREAM",
      message: "endpoint Kubernetes//Pod/demo/db has no address",
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
