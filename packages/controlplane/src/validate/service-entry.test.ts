import { describe, expect, it } from "vitest";
import { validateObject } from "./index.js";

function problemsOf(kind: string, spec: unknown, apiVersion = "networking.istio.io/v1") {
  const result = validateObject({ apiVersion, kind, metadata: { name: "e", namespace: "egress" }, spec });
  return result.ok ? [] : result.problems;
}

const HTTP = { number: 80, name: "http", protocol: "HTTP" };
const se = (spec: Record<string, unknown>) =>
  problemsOf("ServiceEntry", { hosts: ["api.example.com"], ...spec });
const we = (spec: Record<string, unknown>) => problemsOf("WorkloadEntry", spec);

describe("ServiceEntry validation", () => {
  it("accepts each resolution in the forms Istio documents, at every served version", () => {
    const good: Record<string, unknown>[] = [
      { hosts: ["*.example.com"], addresses: ["240.240.0.0/16"], ports: [HTTP], location: "MESH_EXTERNAL" },
      {
        addresses: ["240.240.0.10", "2001:db8::10"],
        ports: [HTTP, { number: 443, name: "https", protocol: "TLS", targetPort: 8443 }],
        resolution: "STATIC",
        endpoints: [
          { address: "10.0.0.1", ports: { http: 8080 }, labels: { version: "v1" } },
          { address: "fd00::1" },
        ],
      },
      { hosts: ["api.example.com", "www.example.com."], ports: [HTTP], resolution: "DNS" },
      {
        hosts: ["*.example.com"],
        ports: [{ number: 5432, name: "tcp-pg", protocol: "TCP" }],
        resolution: "DNS",
        endpoints: [{ address: "db.internal", serviceAccount: "db.reader" }, { address: "10.0.0.2" }],
      },
      { ports: [HTTP], resolution: "DNS_ROUND_ROBIN", endpoints: [{ address: "localhost" }] },
      {
        ports: [HTTP],
        location: "MESH_INTERNAL",
        resolution: "STATIC",
        workloadSelector: { labels: { app: "vm" } },
      },
      // Istio requires no ports, and takes port names in any case (its DNS-1123 labels do).
      { resolution: "DNS" },
      { ports: [{ number: 80, name: "HTTP-Web" }] },
    ];
    for (const spec of good) expect(se(spec), JSON.stringify(spec)).toEqual([]);
    for (const version of ["networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"]) {
      expect(problemsOf("ServiceEntry", { hosts: ["a.example.com"], ports: [HTTP] }, version)).toEqual([]);
    }
  });

  it("needs at least one host, each a DNS name or a *. wildcard: not *, not an IP, not a partial wildcard", () => {
    expect(problemsOf("ServiceEntry", { ports: [HTTP] })).toEqual([
      { path: "spec.hosts", message: "must list at least one host (the names clients use for this service)" },
    ]);
    expect(se({ hosts: [] }).map((p) => p.path)).toEqual(["spec.hosts"]);
    expect(
      se({ hosts: ["*", "10.0.0.1", "", "*foo.example.com", "foo.*.com", "bad_host.com", "a.123"] }),
    ).toEqual([
      {
        path: "spec.hosts[0]",
        message: 'the wildcard host "*" is not allowed: name the hosts, or a domain as "*.example.com"',
      },
      {
        path: "spec.hosts[1]",
        message: '"10.0.0.1" is an IP address: hosts are DNS names (put IPs in addresses)',
      },
      { path: "spec.hosts[2]", message: "must not be empty" },
      { path: "spec.hosts[3]", message: 'a wildcard must be the whole first label, as in "*.example.com"' },
      { path: "spec.hosts[4]", message: 'a wildcard must be the whole first label, as in "*.example.com"' },
      {
        path: "spec.hosts[5]",
        message: `"bad_host.com" is not a DNS name: label "bad_host" must be letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
      },
      { path: "spec.hosts[6]", message: '"a.123" is not a DNS name: its last label is all digits' },
    ]);
    expect(se({ hosts: ["*.-bad.com"] }).map((p) => p.path)).toEqual(["spec.hosts[0]"]);
  });

  it("addresses are IPs or CIDR blocks, and CIDR blocks only with resolution NONE or STATIC", () => {
    expect(se({ addresses: ["10.0.0.1", "10.0.0.0/33", "example.com"] })).toEqual([
      { path: "spec.addresses[1]", message: '"10.0.0.0/33" is not an IP address or CIDR block' },
      { path: "spec.addresses[2]", message: '"example.com" is not an IP address or CIDR block' },
    ]);
    expect(se({ addresses: ["10.0.0.0/24"], ports: [HTTP], resolution: "DNS" })).toEqual([
      { path: "spec.addresses[0]", message: "a CIDR block is only allowed with resolution NONE or STATIC" },
    ]);
  });

  it("ports: names required, DNS labels and unique; numbers and targetPorts 1-65535 and unique; known protocols", () => {
    expect(
      se({
        ports: [
          { number: 80, name: "http" },
          { number: 80, name: "http" },
          { number: 0, name: "bad_name" },
          { number: 70000, name: "big", targetPort: 0 },
          { number: 81, name: "t", targetPort: 65536, protocol: "QUIC" },
          { number: 82 },
        ],
      }),
    ).toEqual([
      { path: "spec.ports[1].name", message: "duplicates the port name at spec.ports[0]" },
      { path: "spec.ports[1].number", message: "duplicates the port number at spec.ports[0]" },
      {
        path: "spec.ports[2].name",
        message: `"bad_name" must be a DNS-1123 label: letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
      },
      { path: "spec.ports[2].number", message: "must be an integer from 1 to 65535" },
      { path: "spec.ports[3].number", message: "must be an integer from 1 to 65535" },
      { path: "spec.ports[3].targetPort", message: "must be an integer from 1 to 65535" },
      { path: "spec.ports[4].targetPort", message: "must be an integer from 1 to 65535" },
      {
        path: "spec.ports[4].protocol",
        message:
          "must be one of HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-WEB, HTTPS, TLS, TCP, UDP, MONGO, MYSQL, REDIS (or left out to detect it)",
      },
      { path: "spec.ports[5].name", message: "is required (endpoints map their ports by this name)" },
    ]);
  });

  it("resolution is NONE, STATIC, DNS or DNS_ROUND_ROBIN; DYNAMIC_DNS is refused with the reason", () => {
    expect(se({ resolution: "DYNAMIC_DNS" })).toEqual([
      {
        path: "spec.resolution",
        message: "DYNAMIC_DNS is not supported by Ambient: use DNS or DNS_ROUND_ROBIN, naming each host",
      },
    ]);
    expect(se({ resolution: "MAGIC" })).toEqual([
      { path: "spec.resolution", message: "must be one of NONE, STATIC, DNS, DNS_ROUND_ROBIN" },
    ]);
  });

  it("endpoints and workloadSelector are mutually exclusive; selector labels are exact", () => {
    expect(
      se({
        resolution: "STATIC",
        endpoints: [{ address: "10.0.0.1" }],
        workloadSelector: { labels: { app: "vm" } },
      }),
    ).toEqual([
      {
        path: "spec.workloadSelector",
        message: "cannot be combined with endpoints: an entry either lists its endpoints or selects them",
      },
    ]);
    expect(se({ resolution: "STATIC", workloadSelector: { labels: { app: "*", "bad key!": "x" } } })).toEqual(
      [
        {
          path: "spec.workloadSelector.labels.app",
          message: "wildcards are not supported in a workload selector",
        },
        {
          path: 'spec.workloadSelector.labels["bad key!"]',
          message: expect.stringMatching(/^label key "bad key!" must be a label name/),
        },
      ],
    );
  });

  it("NONE has no endpoints", () => {
    expect(se({ resolution: "NONE", endpoints: [{ address: "10.0.0.1" }] })).toEqual([
      {
        path: "spec.endpoints",
        message: "must be empty with resolution NONE: the address the client dialed is the endpoint",
      },
    ]);
    expect(se({ endpoints: [{ address: "10.0.0.1" }] }).map((p) => p.path)).toEqual(["spec.endpoints"]);
  });

  it("STATIC endpoints are IP addresses; unix domain sockets are refused as unsupported", () => {
    expect(
      se({
        ports: [HTTP],
        resolution: "STATIC",
        endpoints: [
          { address: "db.example.com" },
          { address: "unix:///var/run/db.sock" },
          { ports: { http: 80 } },
        ],
      }),
    ).toEqual([
      {
        path: "spec.endpoints[0].address",
        message:
          '"db.example.com" is not an IP address (resolution STATIC needs IPs; use resolution DNS for hostnames)',
      },
      {
        path: "spec.endpoints[1].address",
        message:
          "unix domain socket endpoints are not supported by Ambient: ztunnel reaches endpoints over TCP, give an IP address",
      },
      { path: "spec.endpoints[2].address", message: "is required (an IP address)" },
    ]);
  });

  it("endpoint ports name a declared port and carry 1-65535; labels and serviceAccount are Kubernetes names", () => {
    expect(
      se({
        ports: [HTTP],
        resolution: "STATIC",
        endpoints: [
          {
            address: "10.0.0.1",
            ports: { http: 0, grpc: 9090 },
            labels: { "-bad": "x" },
            serviceAccount: "Bad_SA",
          },
        ],
      }),
    ).toEqual([
      { path: "spec.endpoints[0].ports.http", message: "must be an integer from 1 to 65535" },
      {
        path: "spec.endpoints[0].ports.grpc",
        message: "names no port of this ServiceEntry (its ports are http)",
      },
      {
        path: 'spec.endpoints[0].labels["-bad"]',
        message: expect.stringMatching(/^label key "-bad" must be a label name/),
      },
      {
        path: "spec.endpoints[0].serviceAccount",
        message: expect.stringMatching(/^"Bad_SA" must be a DNS-1123 subdomain/),
      },
    ]);
    expect(se({ resolution: "STATIC", endpoints: [{ address: "10.0.0.1", ports: { http: 80 } }] })).toEqual([
      {
        path: "spec.endpoints[0].ports.http",
        message: "names no port of this ServiceEntry (it declares no ports)",
      },
    ]);
  });

  it("DNS: endpoints are hostnames or IPs; without endpoints no wildcard hosts; DNS_ROUND_ROBIN at most one", () => {
    expect(se({ ports: [HTTP], resolution: "DNS", endpoints: [{ address: "not a name" }] })).toEqual([
      { path: "spec.endpoints[0].address", message: '"not a name" is neither an IP address nor a DNS name' },
    ]);
    expect(se({ hosts: ["*.example.com"], ports: [HTTP], resolution: "DNS" })).toEqual([
      {
        path: "spec.hosts[0]",
        message:
          "a wildcard host needs endpoints with resolution DNS: without them each host is resolved as written",
      },
    ]);
    expect(
      se({
        ports: [HTTP],
        resolution: "DNS_ROUND_ROBIN",
        endpoints: [{ address: "a.example.com" }, { address: "b.example.com" }],
      }),
    ).toEqual([
      { path: "spec.endpoints", message: "may list at most one endpoint with resolution DNS_ROUND_ROBIN" },
    ]);
  });

  it("several hosts need HTTP or TLS ports unless resolution is NONE (plain TCP cannot tell them apart)", () => {
    const hosts = ["a.example.com", "b.example.com"];
    const ports = [HTTP, { number: 5432, name: "pg" }];
    expect(se({ hosts, ports, resolution: "DNS" })).toEqual([
      {
        path: "spec.ports[1].protocol",
        message:
          "with more than one host, every port must be HTTP- or TLS-based (HTTP, HTTP2, GRPC, HTTPS, TLS): plain TCP cannot tell the hosts apart",
      },
    ]);
    expect(se({ hosts, ports, resolution: "NONE" })).toEqual([]);
    expect(
      se({ hosts, ports: [HTTP, { number: 443, name: "tls", protocol: "tls" }], resolution: "DNS" }),
    ).toEqual([]);
  });
});

describe("WorkloadEntry validation", () => {
  it("accepts an IP or a hostname with named ports, labels and a service account", () => {
    expect(
      we({
        address: "10.0.0.7",
        ports: { http: 8080 },
        labels: { app: "vm" },
        serviceAccount: "vm-sa",
        weight: 2,
      }),
    ).toEqual([]);
    expect(we({ address: "vm-1.example.com", network: "vpc-1", locality: "us-east1/a" })).toEqual([]);
    expect(problemsOf("WorkloadEntry", { address: "fd00::7" }, "networking.istio.io/v1alpha3")).toEqual([]);
  });

  it("needs an address, an IP or a DNS name but not a unix socket", () => {
    expect(we({ ports: { http: 80 } })).toEqual([
      { path: "spec.address", message: "is required (an IP address or a DNS name)" },
    ]);
    expect(we({ address: "-bad-.example.com" })).toEqual([
      { path: "spec.address", message: '"-bad-.example.com" is neither an IP address nor a DNS name' },
    ]);
    expect(we({ address: "unix://@abstract" }).map((p) => p.path)).toEqual(["spec.address"]);
  });

  it("port values are 1-65535 under DNS-label names; serviceAccount is a Kubernetes name", () => {
    expect(we({ address: "10.0.0.7", ports: { http: 70000, bad_name: 80 }, serviceAccount: "-sa" })).toEqual([
      { path: "spec.ports.http", message: "must be an integer from 1 to 65535" },
      {
        path: "spec.ports.bad_name",
        message: `the port name "bad_name" must be a DNS-1123 label: letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
      },
      { path: "spec.serviceAccount", message: expect.stringMatching(/^"-sa" must be a DNS-1123 subdomain/) },
    ]);
  });
});
