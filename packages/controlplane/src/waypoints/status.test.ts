import type { Gateway, KubeObject, Service } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { gatewayStatus, statusChanged } from "./status.js";

const gw = (status?: unknown): Gateway => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "waypoint", namespace: "demo", generation: 2 },
  spec: { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }] },
  ...(status ? { status } : {}),
});
const service = (clusterIP?: string): Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "waypoint", namespace: "demo" },
  spec: clusterIP ? { clusterIP, clusterIPs: [clusterIP] } : {},
});
const deployment = (readyReplicas?: number): KubeObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "waypoint", namespace: "demo" },
  spec: { replicas: 1 },
  ...(readyReplicas !== undefined ? { status: { readyReplicas } } : {}),
});
const base = { clusterDomain: "cluster.local", now: "2026-01-01T00:00:00Z" };
const programmed = (s: ReturnType<typeof gatewayStatus>) => s.conditions.find((c) => c.type === "Programmed");

describe("gatewayStatus", () => {
  it("is Accepted at once and not Programmed while no waypoint pod is ready, saying why", () => {
    const s = gatewayStatus(gw(), { ...base, service: service("10.96.0.20"), deployment: deployment(0) });
    expect(s.conditions[0]).toMatchObject({
      type: "Accepted",
      status: "True",
      reason: "Accepted",
      observedGeneration: 2,
    });
    expect(programmed(s)).toMatchObject({
      status: "False",
      reason: "AddressNotAssigned",
      message: "no waypoint pod is ready yet (Deployment demo/waypoint: 0 of 1 ready)",
    });
    expect(s.addresses).toEqual([{ type: "IPAddress", value: "10.96.0.20" }]);
  });

  it("names a missing Service, a missing cluster IP and a missing Deployment", () => {
    expect(
      programmed(gatewayStatus(gw(), { ...base, service: undefined, deployment: undefined }))?.message,
    ).toBe("waiting for the Service demo/waypoint to be created");
    const noIp = gatewayStatus(gw(), { ...base, service: service(), deployment: deployment(1) });
    expect(programmed(noIp)?.message).toBe("the Service demo/waypoint has no cluster IP yet");
    expect(noIp.addresses).toBeUndefined();
    expect(
      programmed(gatewayStatus(gw(), { ...base, service: service("10.96.0.20"), deployment: undefined }))
        ?.message,
    ).toBe("waiting for the Deployment demo/waypoint to be created");
  });

  it("is Programmed once a pod is ready, assigned to the Service's hostname and listener port", () => {
    const s = gatewayStatus(gw(), { ...base, service: service("10.96.0.20"), deployment: deployment(1) });
    expect(programmed(s)).toMatchObject({
      status: "True",
      reason: "Programmed",
      message: "Resource programmed, assigned to service(s) waypoint.demo.svc.cluster.local:15008",
    });
  });

  it("keeps a condition's lastTransitionTime while its status holds, and says unchanged status is unchanged", () => {
    const first = gatewayStatus(gw(), { ...base, service: service("10.96.0.20"), deployment: deployment(0) });
    const later = { ...base, now: "2026-01-01T01:00:00Z", service: service("10.96.0.20") };
    const same = gatewayStatus(gw(first), { ...later, deployment: deployment(0) });
    expect(same.conditions.map((c) => c.lastTransitionTime)).toEqual([
      "2026-01-01T00:00:00Z",
      "2026-01-01T00:00:00Z",
    ]);
    expect(statusChanged(first, same)).toBe(false);
    const ready = gatewayStatus(gw(first), { ...later, deployment: deployment(1) });
    expect(programmed(ready)?.lastTransitionTime).toBe("2026-01-01T01:00:00Z");
    expect(statusChanged(first, ready)).toBe(true);
  });

  describe("a Gateway of class istio (ingress gateway)", () => {
    const ingress = (): Gateway => ({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "public", namespace: "edge", generation: 1 },
      spec: {
        gatewayClassName: "istio",
        listeners: [
          { name: "http", port: 80, protocol: "HTTP" },
          { name: "https", port: 443, protocol: "HTTPS" },
        ],
      },
    });
    const lb = (ingressStatus?: { ip?: string; hostname?: string }[]): Service => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "public-istio", namespace: "edge" },
      spec: { type: "LoadBalancer", clusterIP: "10.96.0.30", clusterIPs: ["10.96.0.30"] },
      status: { loadBalancer: ingressStatus ? { ingress: ingressStatus } : {} },
    });

    it("names its <gateway>-istio Service and Deployment and says a gateway pod is not ready", () => {
      expect(
        programmed(gatewayStatus(ingress(), { ...base, service: undefined, deployment: undefined }))?.message,
      ).toBe("waiting for the Service edge/public-istio to be created");
      expect(
        programmed(gatewayStatus(ingress(), { ...base, service: lb(), deployment: deployment(0) }))?.message,
      ).toBe("no gateway pod is ready yet (Deployment edge/public-istio: 0 of 1 ready)");
    });

    it("has the cluster IP as its address until the load balancer has an ingress, then the ingress", () => {
      const pending = gatewayStatus(ingress(), { ...base, service: lb(), deployment: deployment(1) });
      expect(pending.addresses).toEqual([{ type: "IPAddress", value: "10.96.0.30" }]);
      expect(programmed(pending)).toMatchObject({
        status: "True",
        message:
          "Resource programmed, assigned to service(s) public-istio.edge.svc.cluster.local:80,public-istio.edge.svc.cluster.local:443",
      });
      const assigned = gatewayStatus(ingress(), {
        ...base,
        service: lb([{ ip: "203.0.113.7" }, { hostname: "lb.example.com" }]),
        deployment: deployment(1),
      });
      expect(assigned.addresses).toEqual([
        { type: "IPAddress", value: "203.0.113.7" },
        { type: "Hostname", value: "lb.example.com" },
      ]);
      expect(statusChanged(pending, assigned)).toBe(true);
    });
  });
});
