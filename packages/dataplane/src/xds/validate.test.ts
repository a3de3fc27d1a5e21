import { decodeAddress, encodeAddress, findCode } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { ip, testPolicy, testService, testWorkload } from "../state/testing.js";
import { validateAddress, validateAuthorization } from "./validate.js";

function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(findCode(err)).toBe("AMB_XDS_DECODE");
    return (err as Error).message;
  }
  throw new Error("accepted");
}

describe("validateAddress", () => {
  it("accepts what the control plane sends and fills in Istio's identity defaults", () => {
    const w = testWorkload({
      name: "w",
      namespace: "ns",
      ips: ["10.0.0.1", "fd00::1"],
      trustDomain: "",
      serviceAccount: "",
    });
    const out = validateAddress(w.uid, decodeAddress(encodeAddress({ workload: w })));
    expect(out.workload).toMatchObject({ trustDomain: "cluster.local", serviceAccount: "default" });
    const s = testService({ name: "s", namespace: "ns", vips: ["10.96.0.1"], ports: [80] });
    expect(validateAddress("ns/s.ns.svc.cluster.local", { service: s })).toEqual({ service: s });
  });

  it("lists every problem of a workload", () => {
    const w = testWorkload({
      name: "",
      namespace: "ns",
      uid: "",
      ips: ["10.0.0.1"],
      serviceAccount: "bad/sa",
      services: { "no-slash": { ports: [{ servicePort: 0, targetPort: 70_000 }] } },
      waypoint: { hboneMtlsPort: 15008 },
    });
    w.addresses.push(new Uint8Array(3));
    const message = problemsOf(() => validateAddress("x", { workload: w }));
    expect(message).toMatch(/^invalid istio.workload.Workload: /);
    for (const part of [
      "uid is empty",
      "name is empty",
      "addresses[1] is 3 bytes",
      "trustDomain/namespace/serviceAccount do not form a SPIFFE ID",
      'services["no-slash"] is not "<namespace>/<hostname>"',
      'services["no-slash"].ports[0].servicePort is 0',
      'services["no-slash"].ports[0].targetPort is 70000',
      "waypoint has neither hostname nor address",
    ]) {
      expect(message).toContain(part);
    }
  });

  it("refuses a service without a hostname, bad VIPs, or an unspecified routing scope", () => {
    const s = testService({ name: "s", namespace: "ns", hostname: "", ports: [80] });
    s.addresses.push({ network: "", address: new Uint8Array(8) });
    s.loadBalancing = { routingPreference: ["ZONE", "UNSPECIFIED_SCOPE"], mode: "FAILOVER" };
    s.waypoint = { address: { network: "", address: ip("10.0.0.9") }, hboneMtlsPort: 15008 };
    const message = problemsOf(() => validateAddress("ns/", { service: s }));
    expect(message).toContain("hostname is empty");
    expect(message).toContain("addresses[0].address is 8 bytes");
    expect(message).toContain("loadBalancing.routingPreference[1] is UNSPECIFIED_SCOPE");
    expect(message).not.toContain("waypoint");
  });

  it("refuses a service filed under another name", () => {
    const s = testService({ name: "s", namespace: "ns" });
    expect(problemsOf(() => validateAddress("other/s.ns.svc.cluster.local", { service: s }))).toContain(
      'namespace/hostname give "ns/s.ns.svc.cluster.local", not the resource name',
    );
  });
});

describe("validateAuthorization", () => {
  it("accepts a well-formed policy", () => {
    const p = testPolicy({ name: "p", namespace: "ns", match: { destinationPorts: [8080] } });
    expect(validateAuthorization("ns/p", p)).toBe(p);
  });

  it("refuses unknown scopes and actions, bad CIDRs and ports, and a mismatched name", () => {
    const p = testPolicy({
      name: "p",
      namespace: "ns",
      scope: "CLUSTER" as never,
      action: "AUDIT" as never,
      match: {
        sourceIps: [{ address: ip("10.0.0.0"), length: 33 }],
        notDestinationIps: [{ address: new Uint8Array(2), length: 8 }],
        destinationPorts: [65_536],
      },
    });
    const message = problemsOf(() => validateAuthorization("ns/q", p));
    expect(message).toMatch(/^invalid istio.security.Authorization: /);
    for (const part of [
      'name and namespace give "ns/p", not the resource name',
      'scope is "CLUSTER"',
      'action is "AUDIT"',
      "rules[0].clauses[0].matches[0].sourceIps[0].length is 33",
      "rules[0].clauses[0].matches[0].notDestinationIps[0].address is 2 bytes",
      "rules[0].clauses[0].matches[0].destinationPorts[0] is 65536",
    ]) {
      expect(message).toContain(part);
    }
  });
});
