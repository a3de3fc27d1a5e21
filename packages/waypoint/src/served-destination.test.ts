// The waypoint's 15008 is never an open proxy: a PASSTHROUGH service (a ServiceEntry with
// resolution NONE) makes the waypoint forward to the address in the CONNECT authority, so that
// address must be one of the VIPs of a service bound to this waypoint, and nothing else.

import { hasCode, WaypointErrorCode } from "@ambient/core";
import { ProxyState } from "@ambient/dataplane";
import { testService, testWorkload } from "@ambient/dataplane/testing";
import { describe, expect, it } from "vitest";
import { servedDestination } from "./served-destination.js";

const SELF = { name: "egress-waypoint", namespace: "egress", ip: "10.0.0.40" };
const BOUND = {
  hostname: { namespace: "egress", hostname: "egress-waypoint.egress.svc.cluster.local" },
  hboneMtlsPort: 15008,
};
const OTHER = {
  hostname: { namespace: "egress", hostname: "other.egress.svc.cluster.local" },
  hboneMtlsPort: 15008,
};

const state = new ProxyState();
const passthrough = (name: string, vip: string, waypoint?: typeof BOUND) =>
  testService({
    name,
    namespace: "egress",
    hostname: `${name}.example.com`,
    vips: [vip],
    ports: [80],
    loadBalancing: { routingPreference: [], mode: "PASSTHROUGH" },
    ...(waypoint ? { waypoint } : {}),
  });
state.applyAddresses({
  upserts: [
    ["egress/ours.example.com", { service: passthrough("ours", "203.0.113.10", BOUND) }],
    ["egress/theirs.example.com", { service: passthrough("theirs", "203.0.113.20", OTHER) }],
    ["egress/direct.example.com", { service: passthrough("direct", "203.0.113.30") }],
    [
      "Kubernetes//Pod/egress/app",
      { workload: testWorkload({ name: "app", namespace: "egress", ips: ["10.0.0.7"] }) },
    ],
  ],
});

function refusal(address: string): string {
  const served = servedDestination(state, SELF, address, `${address}:80`);
  if (!("refuse" in served)) throw new Error(`${address} was served`);
  expect(hasCode(served.refuse, WaypointErrorCode.NOT_SERVED)).toBe(true);
  return served.refuse.message;
}

describe("servedDestination", () => {
  it("serves a PASSTHROUGH service's VIP when the service is bound to this waypoint", () => {
    expect(servedDestination(state, SELF, "203.0.113.10", "203.0.113.10:80")).toMatchObject({
      ip: "203.0.113.10",
      service: { name: "ours" },
    });
  });

  it("refuses any other address: an arbitrary external IP, another waypoint's or no waypoint's service, a workload, itself, loopback", () => {
    expect(refusal("198.51.100.1")).toMatch(/no service or workload/);
    expect(refusal("203.0.113.20")).toMatch(/service egress\/theirs, not one that uses waypoint/);
    expect(refusal("203.0.113.30")).toMatch(/service egress\/direct/);
    expect(refusal("10.0.0.7")).toMatch(/workload egress\/app/);
    expect(refusal("10.0.0.40")).toMatch(/this waypoint itself/);
    expect(refusal("127.0.0.1")).toMatch(/no service or workload/);
    // The same address written another way is still the waypoint itself.
    expect(refusal("::ffff:10.0.0.40")).toMatch(/this waypoint itself/);
  });
});
