import type { KubeObject, Pod, Service } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { nodeIdentityIndex } from "../server/publisher.js";
import { translate } from "../translate/index.js";
import { AddressAllocator } from "./address-allocator.js";
import { SYNTHESIZED_ANNOTATION, synthesizeWaypoints } from "./waypoint-pods.js";

const node = (name: string): KubeObject => ({ apiVersion: "v1", kind: "Node", metadata: { name } });

function gateway(
  name: string,
  opts: { className?: string; annotations?: Record<string, string>; addresses?: unknown[] } = {},
): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace: "demo", annotations: opts.annotations ?? {} },
    spec: {
      gatewayClassName: opts.className ?? "istio-waypoint",
      listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
      ...(opts.addresses ? { addresses: opts.addresses } : {}),
    },
  };
}

const find = <T extends KubeObject>(objects: KubeObject[], kind: string, name: string): T | undefined =>
  objects.find((o) => o.kind === kind && o.metadata.name === name) as T | undefined;

describe("synthesizeWaypoints", () => {
  it("creates the pod and service Istio's deployment controller would, on the first node by name", () => {
    const { objects, warnings } = synthesizeWaypoints([node("node-b"), node("node-a"), gateway("wp")]);
    expect(warnings).toEqual([]);
    const pod = find<Pod>(objects, "Pod", "wp-waypoint")!;
    expect(pod.metadata.namespace).toBe("demo");
    expect(pod.metadata.labels).toMatchObject({
      "gateway.networking.k8s.io/gateway-name": "wp",
      "istio.io/dataplane-mode": "none",
    });
    expect(pod.metadata.annotations).toEqual({
      [SYNTHESIZED_ANNOTATION]: "gateway.networking.k8s.io/Gateway/demo/wp",
    });
    expect(pod.spec).toMatchObject({
      nodeName: "node-a",
      serviceAccountName: "wp",
      containers: [{ ports: [{ containerPort: 15008 }] }],
    });
    expect(pod.status).toEqual({ phase: "Running" });

    const svc = find<Service>(objects, "Service", "wp")!;
    expect(svc.spec?.selector).toEqual({ "gateway.networking.k8s.io/gateway-name": "wp" });
    expect(svc.spec?.ports?.map((p) => [p.name, p.port])).toEqual([
      ["mesh", 15008],
      ["status", 15021],
    ]);
    expect(svc.spec?.clusterIP).toBeUndefined();
  });

  it("follows ambient.io/node and takes the pod address from spec.addresses", () => {
    const { objects } = synthesizeWaypoints([
      node("node-a"),
      node("node-b"),
      gateway("wp", {
        annotations: { "ambient.io/node": "node-b" },
        addresses: [{ type: "IPAddress", value: "127.10.2.99" }],
      }),
    ]);
    const pod = find<Pod>(objects, "Pod", "wp-waypoint")!;
    expect(pod.spec?.nodeName).toBe("node-b");
    expect(pod.status?.podIP).toBe("127.10.2.99");
  });

  it("ignores Gateways of other classes", () => {
    const input = [node("node-a"), gateway("other", { className: "example.com/other" })];
    expect(synthesizeWaypoints(input).objects).toEqual(input);
  });

  it("gives a class-istio Gateway the ingress gateway pod and Service Istio's controller makes", () => {
    const input = [
      node("node-a"),
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: { name: "public", namespace: "demo" },
        spec: {
          gatewayClassName: "istio",
          addresses: [{ value: "127.10.1.70" }],
          listeners: [
            { name: "http", port: 80, protocol: "HTTP" },
            { name: "https", port: 443, protocol: "HTTPS" },
            { name: "https-other", port: 443, protocol: "HTTPS", hostname: "other.example.com" },
          ],
        },
      } as KubeObject,
    ];
    const { objects, warnings } = synthesizeWaypoints(input);
    expect(warnings).toEqual([]);
    const pod = find<Pod>(objects, "Pod", "public-istio")!;
    expect(pod.metadata.labels).toMatchObject({
      "gateway.networking.k8s.io/gateway-name": "public",
      "gateway.networking.k8s.io/gateway-class-name": "istio",
      "istio.io/dataplane-mode": "none",
    });
    expect(pod.spec?.serviceAccountName).toBe("public-istio");
    expect(pod.spec?.nodeName).toBe("node-a");
    expect(pod.status?.podIP).toBe("127.10.1.70");
    const svc = find<Service>(objects, "Service", "public-istio")!;
    // One port per listener port, as several listeners may share one.
    expect(svc.spec?.ports?.map((p) => p.port)).toEqual([80, 443]);
    expect(svc.spec?.selector).toEqual({ "gateway.networking.k8s.io/gateway-name": "public" });
  });

  it("never overwrites a real object: the real one wins and a warning says so", () => {
    const realService: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "wp", namespace: "demo" },
      spec: { clusterIP: "127.10.100.50", ports: [{ port: 15008 }] },
    };
    const { objects, warnings } = synthesizeWaypoints([node("node-a"), gateway("wp"), realService]);
    expect(objects.filter((o) => o.kind === "Service")).toEqual([realService]);
    expect(find(objects, "Pod", "wp-waypoint")).toBeDefined();
    expect(warnings).toEqual([
      {
        object: "core/Service/demo/wp",
        message: expect.stringMatching(/replaces the Service Ambient would create for waypoint demo\/wp/),
      },
    ]);
  });

  it("warns about a bad spec.addresses value or a missing node", () => {
    const { warnings } = synthesizeWaypoints([gateway("wp", { addresses: [{ value: "waypoint.example" }] })]);
    expect(warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/no Node to run the waypoint on/),
      expect.stringMatching(/"waypoint.example" is not an IP address/),
    ]);
  });

  it("with the allocator: the waypoint is an addressed workload behind its own VIP, its identity on its node", () => {
    const given: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "app", namespace: "demo", labels: { "istio.io/use-waypoint": "wp" } },
      spec: { clusterIP: "127.10.100.1", selector: { app: "app" }, ports: [{ port: 80 }] },
    };
    const { objects } = synthesizeWaypoints([node("node-a"), gateway("wp"), given]);
    const result = translate(new AddressAllocator().assign(objects));

    const wp = result.workloads.find((w) => w.name === "wp-waypoint")!;
    expect(Buffer.from(wp.addresses[0]!).join(".")).toBe("127.10.1.10");
    expect(wp).toMatchObject({
      tunnelProtocol: "NONE",
      serviceAccount: "wp",
      node: "node-a",
      status: "HEALTHY",
    });
    expect(wp.waypoint).toBeUndefined();
    expect(wp.services).toEqual({
      "demo/wp.demo.svc.cluster.local": {
        ports: [
          { servicePort: 15008, targetPort: 15008 },
          { servicePort: 15021, targetPort: 15021 },
        ],
      },
    });

    const wpService = result.services.find((s) => s.name === "wp")!;
    // The given VIP 127.10.100.1 is skipped.
    expect(Buffer.from(wpService.addresses[0]!.address).join(".")).toBe("127.10.100.2");
    expect(wpService.waypoint).toBeUndefined();
    expect(result.services.find((s) => s.name === "app")!.waypoint).toEqual({
      hostname: { namespace: "demo", hostname: "wp.demo.svc.cluster.local" },
      hboneMtlsPort: 15008,
    });
    // The CA lets node-a's token ask for the waypoint's identity.
    expect(nodeIdentityIndex(result).get("node-a")).toContain("spiffe://cluster.local/ns/demo/sa/wp");
    expect(result.warnings).toEqual([]);
  });
});
