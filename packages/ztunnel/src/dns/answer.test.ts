import type { Service, Workload } from "@ambient/core";
import { ProxyState } from "@ambient/dataplane";
import { testService, testWorkload } from "@ambient/dataplane/testing";
import { describe, expect, it } from "vitest";
import { answerFor } from "./answer.js";

function service(name: string, namespace: string, hostname: string, vips: string[]): Service {
  return testService({ name, namespace, hostname, vips, ports: [{ servicePort: 80, targetPort: 8080 }] });
}

function pod(name: string, addr: string, svcKey: string, status: Workload["status"] = "HEALTHY"): Workload {
  return testWorkload({
    name,
    namespace: "demo",
    ips: [addr],
    serviceAccount: name,
    node: "node-1",
    status,
    services: { [svcKey]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
  });
}

const state = new ProxyState();
const services = [
  service("web", "demo", "web.demo.svc.cluster.local", ["10.96.0.10", "fd00::10"]),
  service("db", "other", "db.other.svc.cluster.local", ["10.96.0.20"]),
  service("headless", "demo", "headless.demo.svc.cluster.local", []),
  service("empty", "demo", "empty.demo.svc.cluster.local", []),
  service("api", "demo", "api.example.com", ["240.240.0.1"]),
  service("wild", "demo", "*.wild.example.com", ["240.240.0.2"]),
  service("dns-only", "demo", "dns-only.example.org", []),
];
state.applyAddresses({
  upserts: [
    ...services.map((s) => [`${s.namespace}/${s.hostname}`, { service: s }] as const),
    [
      "Kubernetes//Pod/demo/h-1",
      { workload: pod("h-1", "10.1.0.2", "demo/headless.demo.svc.cluster.local") },
    ],
    [
      "Kubernetes//Pod/demo/h-2",
      { workload: pod("h-2", "10.1.0.3", "demo/headless.demo.svc.cluster.local") },
    ],
    [
      "Kubernetes//Pod/demo/h-3",
      { workload: pod("h-3", "10.1.0.4", "demo/headless.demo.svc.cluster.local", "UNHEALTHY") },
    ],
  ],
});

const inDemo = { namespace: "demo" };
const addresses = (name: string, type = "A", opts = inDemo) => {
  const a = answerFor(state, name, type, opts);
  return a.kind === "known" ? a.addresses : "forward";
};

describe("DNS proxy answers", () => {
  it("Service hostnames: A and AAAA from the VIPs, any case, trailing dot or not", () => {
    expect(addresses("web.demo.svc.cluster.local")).toEqual(["10.96.0.10"]);
    expect(addresses("WEB.Demo.svc.cluster.local.", "AAAA")).toEqual(["fd00::10"]);
  });

  it("a service without an IPv6 VIP: AAAA is known with no addresses (NOERROR, not NXDOMAIN)", () => {
    expect(answerFor(state, "db.other.svc.cluster.local", "AAAA", inDemo)).toEqual({
      kind: "known",
      hostname: "db.other.svc.cluster.local",
      addresses: [],
    });
  });

  it("other types for a known name: known, no addresses", () => {
    expect(addresses("web.demo.svc.cluster.local", "TXT")).toEqual([]);
  });

  it("search-list forms resolve in the querying pod's namespace", () => {
    expect(addresses("web")).toEqual(["10.96.0.10"]);
    expect(addresses("web.demo")).toEqual(["10.96.0.10"]);
    expect(addresses("web.demo.svc")).toEqual(["10.96.0.10"]);
    expect(addresses("db.other")).toEqual(["10.96.0.20"]);
    expect(addresses("db")).toBe("forward");
    expect(addresses("db", "A", { namespace: "other" })).toEqual(["10.96.0.20"]);
  });

  it("ServiceEntry hosts, and wildcard hosts for every name below them", () => {
    expect(addresses("api.example.com")).toEqual(["240.240.0.1"]);
    expect(addresses("a.wild.example.com")).toEqual(["240.240.0.2"]);
    expect(addresses("a.b.wild.example.com")).toEqual(["240.240.0.2"]);
    expect(addresses("wild.example.com")).toBe("forward");
  });

  it("headless services: the healthy endpoints' pod IPs", () => {
    expect(addresses("headless.demo.svc.cluster.local")).toEqual(["10.1.0.2", "10.1.0.3"]);
    expect(addresses("empty.demo.svc.cluster.local")).toEqual([]);
  });

  it("forwards names the mesh does not know, and ServiceEntries that only DNS can resolve", () => {
    expect(addresses("example.com")).toBe("forward");
    expect(addresses("nope.demo.svc.cluster.local")).toBe("forward");
    expect(addresses("dns-only.example.org")).toBe("forward");
    expect(addresses("")).toBe("forward");
  });
});
