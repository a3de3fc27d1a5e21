import type { Gateway } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { contains } from "./controller.js";
import { waypointGatewayClass, waypointObjects } from "./desired.js";

const OPTS = {
  image: "localhost/ambient/waypoint:dev",
  controlPlaneAddress: "istiod.istio-system.svc:15012",
  trustDomain: "cluster.local",
  clusterId: "Kubernetes",
  clusterDomain: "cluster.local",
};

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: { fieldPath: string } };
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    serviceAccountName: string;
    containers: {
      image: string;
      env: EnvVar[];
      readinessProbe: { httpGet: unknown };
      volumeMounts: unknown[];
    }[];
    volumes: unknown[];
  };
}

const gateway = (spec: Partial<Gateway["spec"]> = {}): Gateway => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "waypoint", namespace: "demo", uid: "uid-1" },
  spec: {
    gatewayClassName: "istio-waypoint",
    listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
    ...spec,
  },
});

describe("waypointObjects", () => {
  it("names the ServiceAccount, Deployment and Service after the Gateway, owned by it, with the managed labels", () => {
    const { serviceAccount, deployment, service } = waypointObjects(gateway(), OPTS);
    for (const obj of [serviceAccount, deployment, service]) {
      expect(obj.metadata).toMatchObject({
        name: "waypoint",
        namespace: "demo",
        labels: {
          "gateway.networking.k8s.io/gateway-name": "waypoint",
          "gateway.networking.k8s.io/gateway-class-name": "istio-waypoint",
          "gateway.istio.io/managed": "istio.io-mesh-controller",
        },
        ownerReferences: [
          { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "waypoint", uid: "uid-1" },
        ],
      });
    }
  });

  it("runs the waypoint image with Istio's pod env, the istio-ca token and the root ConfigMap, never captured", () => {
    const { deployment } = waypointObjects(gateway(), OPTS);
    const template = (deployment.spec as { template: PodTemplate }).template;
    expect(template.metadata.labels).toMatchObject({
      "istio.io/dataplane-mode": "none",
      "gateway.networking.k8s.io/gateway-name": "waypoint",
      "sidecar.istio.io/inject": "false",
    });
    expect(template.spec.serviceAccountName).toBe("waypoint");
    const container = template.spec.containers[0]!;
    expect(container.image).toBe("localhost/ambient/waypoint:dev");
    const env = Object.fromEntries(
      container.env.map(
        (e: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }) => [
          e.name,
          e.value ?? `fieldRef:${e.valueFrom?.fieldRef.fieldPath}`,
        ],
      ),
    );
    expect(env).toMatchObject({
      GATEWAY_NAME: "waypoint",
      POD_NAME: "fieldRef:metadata.name",
      POD_NAMESPACE: "fieldRef:metadata.namespace",
      INSTANCE_IP: "fieldRef:status.podIP",
      SERVICE_ACCOUNT: "fieldRef:spec.serviceAccountName",
      XDS_ADDRESS: "istiod.istio-system.svc:15012",
      CA_ADDRESS: "istiod.istio-system.svc:15012",
    });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/healthz/ready", port: 15021, scheme: "HTTP" });
    expect(container.volumeMounts).toEqual([
      { name: "istio-token", mountPath: "/var/run/secrets/tokens" },
      { name: "istiod-ca-cert", mountPath: "/var/run/secrets/istio" },
    ]);
    expect(template.spec.volumes).toEqual([
      {
        name: "istio-token",
        projected: {
          sources: [
            { serviceAccountToken: { audience: "istio-ca", expirationSeconds: 43200, path: "istio-token" } },
          ],
        },
      },
      { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
    ]);
  });

  it("keeps istio.io/dataplane-mode none even when spec.infrastructure.labels asks otherwise", () => {
    const gw = gateway({
      infrastructure: {
        labels: { team: "a", "istio.io/dataplane-mode": "ambient" },
        annotations: { note: "x" },
      },
    });
    const { deployment, service } = waypointObjects(gw, OPTS);
    const template = (deployment.spec as { template: PodTemplate }).template;
    expect(template.metadata.labels).toMatchObject({ team: "a", "istio.io/dataplane-mode": "none" });
    expect(service.metadata.labels).toMatchObject({ team: "a" });
    expect(service.metadata.annotations).toEqual({ note: "x" });
  });

  it("gives the Service the status port and one port per distinct listener port", () => {
    const gw = gateway({
      listeners: [
        { name: "mesh", port: 15008, protocol: "HBONE" },
        { name: "again", port: 15008, protocol: "HBONE" },
        { name: "", port: 8080, protocol: "HTTP" },
      ],
    });
    expect(waypointObjects(gw, OPTS).service.spec).toEqual({
      type: "ClusterIP",
      selector: { "gateway.networking.k8s.io/gateway-name": "waypoint" },
      ports: [
        { name: "status-port", port: 15021, protocol: "TCP", appProtocol: "tcp" },
        { name: "mesh", port: 15008, protocol: "TCP", appProtocol: "hbone" },
        { name: "http-2", port: 8080, protocol: "TCP", appProtocol: "http" },
      ],
    });
  });

  it("makes the GatewayClass Istio's mesh controller owns", () => {
    expect(waypointGatewayClass()).toMatchObject({
      metadata: { name: "istio-waypoint" },
      spec: { controllerName: "istio.io/mesh-controller" },
    });
  });
});

describe("contains", () => {
  it("holds when the API server only added defaults, and fails on a changed or missing field", () => {
    const wanted = { a: 1, l: [{ x: 1 }], m: { k: "v" } };
    expect(contains({ a: 1, l: [{ x: 1, d: 0 }], m: { k: "v", z: 2 }, extra: true }, wanted)).toBe(true);
    expect(contains({ a: 2, l: [{ x: 1 }], m: { k: "v" } }, wanted)).toBe(false);
    expect(contains({ a: 1, l: [{ x: 1 }, { x: 2 }], m: { k: "v" } }, wanted)).toBe(false);
    expect(contains({ a: 1, l: [{ x: 1 }] }, wanted)).toBe(false);
  });
});
