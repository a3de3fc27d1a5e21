import { ipText } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { desiredStatus } from "../status/conditions.js";
import { translate } from "./index.js";

const ns = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels: { "istio.io/dataplane-mode": "ambient", ...labels } },
});

const entry = (
  name: string,
  spec: Record<string, unknown>,
  labels: Record<string, string> = {},
): KubeObject => ({
  apiVersion: "networking.istio.io/v1",
  kind: "ServiceEntry",
  metadata: { name, namespace: "egress", labels },
  spec,
});

const waypoint: KubeObject = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "waypoint", namespace: "egress" },
  spec: { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }] },
};

const pod = (name: string, labels: Record<string, string>, ip: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "egress", labels },
  spec: { nodeName: "n1", serviceAccountName: "api" },
  status: { phase: "Running", podIP: ip },
});

const ips = (w: { addresses: Uint8Array[] }) => w.addresses.map(ipText);

describe("ServiceEntry translation", () => {
  it("STATIC: one Service per host with the entry's VIPs, one Workload per endpoint", () => {
    const result = translate([
      ns("egress"),
      entry("db", {
        hosts: ["db.example.com", "DB-replica.example.com"],
        addresses: ["240.240.0.10", "10.0.0.0/24"],
        ports: [
          { number: 5432, name: "pg", protocol: "TLS" },
          { number: 80, name: "http", protocol: "HTTP", targetPort: 8080 },
        ],
        resolution: "STATIC",
        endpoints: [
          { address: "192.0.2.10", ports: { pg: 15432 }, locality: "eu/eu-1" },
          { address: "192.0.2.11", labels: { "networking.istio.io/tunnel": "http" }, serviceAccount: "db" },
        ],
        subjectAltNames: ["spiffe://example.com/db"],
      }),
    ]);
    expect(result.services.map((s) => s.hostname)).toEqual(["db-replica.example.com", "db.example.com"]);
    const svc = result.services.find((s) => s.hostname === "db.example.com")!;
    expect(svc).toMatchObject({
      name: "db",
      namespace: "egress",
      ports: [
        { servicePort: 5432, targetPort: 5432 },
        { servicePort: 80, targetPort: 8080, appProtocol: "HTTP11" },
      ],
      subjectAltNames: ["spiffe://example.com/db"],
    });
    expect(svc.addresses.map((a) => ipText(a.address))).toEqual(["240.240.0.10"]);
    expect(svc.loadBalancing).toBeUndefined();
    expect(result.warnings).toEqual([
      {
        object: "networking.istio.io/ServiceEntry/egress/db",
        message: "address 10.0.0.0/24 is a range, not one IP: ztunnel cannot use it as the service's address",
      },
    ]);

    expect(result.workloads.map((w) => w.uid)).toEqual([
      "Kubernetes/networking.istio.io/ServiceEntry/egress/db/192.0.2.10",
      "Kubernetes/networking.istio.io/ServiceEntry/egress/db/192.0.2.11",
    ]);
    const [first, second] = result.workloads;
    expect(ips(first!)).toEqual(["192.0.2.10"]);
    expect(first).toMatchObject({
      tunnelProtocol: "NONE",
      serviceAccount: "default",
      status: "HEALTHY",
      hostname: "",
      locality: { region: "eu", zone: "eu-1", subzone: "" },
    });
    expect(first!.services["egress/db.example.com"]).toEqual({
      ports: [
        { servicePort: 5432, targetPort: 15432 },
        { servicePort: 80, targetPort: 8080 },
      ],
    });
    expect(Object.keys(first!.services)).toEqual(["egress/db.example.com", "egress/db-replica.example.com"]);
    expect(second).toMatchObject({ tunnelProtocol: "HBONE", serviceAccount: "db" });
  });

  it("DNS without endpoints: each host is an endpoint the proxy resolves; NONE is a passthrough service", () => {
    const result = translate([
      ns("egress"),
      entry("external", {
        hosts: ["api.example.com"],
        ports: [{ number: 443, name: "tls", protocol: "TLS" }],
        resolution: "DNS",
      }),
      entry("anything", {
        hosts: ["*.example.org"],
        addresses: ["198.51.100.7"],
        ports: [{ number: 80, name: "http", protocol: "HTTP" }],
        resolution: "NONE",
      }),
    ]);
    const dns = result.workloads.find((w) => w.name === "external")!;
    expect(dns).toMatchObject({
      uid: "Kubernetes/networking.istio.io/ServiceEntry/egress/external/api.example.com",
      hostname: "api.example.com",
      addresses: [],
      services: { "egress/api.example.com": { ports: [{ servicePort: 443, targetPort: 443 }] } },
    });
    const none = result.services.find((s) => s.name === "anything")!;
    expect(none.loadBalancing).toEqual({ routingPreference: [], mode: "PASSTHROUGH" });
    expect(result.workloads.some((w) => w.name === "anything")).toBe(false);
  });

  it("workloadSelector: the namespace's Pods and WorkloadEntries serve the entry's hosts", () => {
    const result = translate([
      ns("egress"),
      entry("vms", {
        hosts: ["legacy.internal"],
        addresses: ["240.240.1.1"],
        ports: [{ number: 80, name: "http", targetPort: 8080 }],
        resolution: "STATIC",
        workloadSelector: { labels: { app: "legacy" } },
      }),
      pod("legacy-pod", { app: "legacy" }, "10.1.0.5"),
      pod("other", { app: "web" }, "10.1.0.6"),
      {
        apiVersion: "networking.istio.io/v1",
        kind: "WorkloadEntry",
        metadata: { name: "vm-1", namespace: "egress" },
        spec: { address: "10.9.0.1", labels: { app: "legacy" }, ports: { http: 9080 }, serviceAccount: "vm" },
      },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "legacy", namespace: "egress" },
        spec: {
          clusterIP: "10.96.0.9",
          selector: { app: "legacy" },
          ports: [{ port: 80, targetPort: "http" }],
        },
      },
    ]);
    const byName = (n: string) => result.workloads.find((w) => w.name === n)!;
    expect(byName("legacy-pod").services["egress/legacy.internal"]).toEqual({
      ports: [{ servicePort: 80, targetPort: 8080 }],
    });
    expect(byName("other").services["egress/legacy.internal"]).toBeUndefined();
    const vm = byName("vm-1");
    expect(vm.uid).toBe("Kubernetes/networking.istio.io/WorkloadEntry/egress/vm-1");
    expect(ips(vm)).toEqual(["10.9.0.1"]);
    expect(vm.serviceAccount).toBe("vm");
    // The Service's named target port resolves against the WorkloadEntry's ports, as for a pod's containers.
    expect(vm.services).toEqual({
      "egress/legacy.egress.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 9080 }] },
      "egress/legacy.internal": { ports: [{ servicePort: 80, targetPort: 9080 }] },
    });
    // With a selector, the entry has no inline-endpoint workloads of its own.
    expect(result.workloads.filter((w) => w.uid.includes("/ServiceEntry/"))).toEqual([]);
  });

  it("istio.io/use-waypoint on an entry binds its Services, and the entry gets WaypointBound", () => {
    const objects = [
      ns("egress"),
      waypoint,
      entry(
        "httpbin",
        {
          hosts: ["httpbin.example.com"],
          addresses: ["240.240.0.20"],
          ports: [{ number: 80, name: "http", protocol: "HTTP" }],
          resolution: "DNS",
        },
        { "istio.io/use-waypoint": "waypoint" },
      ),
      entry("plain", {
        hosts: ["plain.example.com"],
        ports: [{ number: 80, name: "http" }],
        resolution: "DNS",
      }),
    ];
    const result = translate(objects);
    expect(result.services.find((s) => s.name === "httpbin")!.waypoint).toEqual({
      hostname: { namespace: "egress", hostname: "waypoint.egress.svc.cluster.local" },
      hboneMtlsPort: 15008,
    });
    expect(result.services.find((s) => s.name === "plain")!.waypoint).toBeUndefined();
    const status = desiredStatus(objects, result);
    expect(status.map((t) => [t.object.metadata.name, t.conditions])).toEqual([
      [
        "httpbin",
        [
          {
            type: "istio.io/WaypointBound",
            status: "True",
            reason: "WaypointAccepted",
            message: "Successfully attached to waypoint egress/waypoint",
          },
        ],
      ],
    ]);
  });

  it("a namespace's use-waypoint label binds its entries too; a Service of the same name stays apart", () => {
    const objects = [
      ns("egress", { "istio.io/use-waypoint": "waypoint" }),
      waypoint,
      entry(
        "api",
        { hosts: ["api.example.com"], ports: [{ number: 443, name: "tls" }], resolution: "DNS" },
        {
          "istio.io/use-waypoint": "none",
        },
      ),
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "api", namespace: "egress" },
        spec: { clusterIP: "10.96.0.1", ports: [{ port: 80 }] },
      },
    ];
    const result = translate(objects);
    expect(result.services.find((s) => s.hostname === "api.example.com")!.waypoint).toBeUndefined();
    expect(
      result.services.find((s) => s.hostname === "api.egress.svc.cluster.local")!.waypoint,
    ).toBeDefined();
    const status = desiredStatus(objects, result);
    expect(status.map((t) => `${t.object.kind}/${t.object.metadata.name}`)).toEqual(["Service/api"]);
  });
});
