import type { Gateway } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { contains } from "./controller.js";
import { gatewayClasses, gatewayObjects } from "./desired.js";

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
    const { serviceAccount, deployment, service } = gatewayObjects(gateway(), OPTS);
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
    const { deployment } = gatewayObjects(gateway(), OPTS);
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
    const { deployment, service } = gatewayObjects(gw, OPTS);
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
    expect(gatewayObjects(gw, OPTS).service.spec).toEqual({
      type: "ClusterIP",
      selector: { "gateway.networking.k8s.io/gateway-name": "waypoint" },
      ports: [
        { name: "status-port", port: 15021, targetPort: 15021, protocol: "TCP", appProtocol: "tcp" },
        { name: "mesh", port: 15008, targetPort: 15008, protocol: "TCP", appProtocol: "hbone" },
        { name: "http-2", port: 8080, targetPort: 8080, protocol: "TCP", appProtocol: "http" },
      ],
    });
  });

  it("makes the GatewayClasses Istio installs: istio-waypoint (mesh controller) and istio (gateway controller)", () => {
    expect(gatewayClasses()).toMatchObject([
      { metadata: { name: "istio-waypoint" }, spec: { controllerName: "istio.io/mesh-controller" } },
      { metadata: { name: "istio" }, spec: { controllerName: "istio.io/gateway-controller" } },
    ]);
  });
});

describe("gatewayObjects for a Gateway of class istio (ingress gateway)", () => {
  const ingress = (): Gateway => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "public", namespace: "edge", uid: "uid-2" },
    spec: {
      gatewayClassName: "istio",
      listeners: [
        { name: "http", port: 80, protocol: "HTTP" },
        {
          name: "https",
          port: 443,
          protocol: "HTTPS",
          tls: { mode: "Terminate", certificateRefs: [{ name: "public-cert" }] },
        },
      ],
    },
  });

  it("names the objects <gateway>-istio, owned by the Gateway, labelled as Istio's gateway controller labels them", () => {
    const { serviceAccount, deployment, service } = gatewayObjects(ingress(), OPTS);
    for (const obj of [serviceAccount, deployment, service]) {
      expect(obj.metadata).toEqual({
        name: "public-istio",
        namespace: "edge",
        labels: {
          "gateway.networking.k8s.io/gateway-name": "public",
          "gateway.networking.k8s.io/gateway-class-name": "istio",
          "gateway.istio.io/managed": "istio.io-gateway-controller",
        },
        ownerReferences: [
          { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "public", uid: "uid-2" },
        ],
      });
    }
  });

  it("runs the waypoint image with --ingress, the Gateway's name, never captured, allowed to bind 80 and 443", () => {
    const { deployment } = gatewayObjects(ingress(), OPTS);
    const spec = deployment.spec as {
      selector: unknown;
      template: PodTemplate & {
        metadata: { annotations: Record<string, string> };
        spec: {
          securityContext: unknown;
          containers: { args?: string[]; ports: { containerPort: number }[] }[];
        };
      };
    };
    expect(spec.selector).toEqual({ matchLabels: { "gateway.networking.k8s.io/gateway-name": "public" } });
    const template = spec.template;
    expect(template.metadata.labels).toMatchObject({
      "gateway.networking.k8s.io/gateway-name": "public",
      "gateway.networking.k8s.io/gateway-class-name": "istio",
      "istio.io/dataplane-mode": "none",
      "sidecar.istio.io/inject": "false",
    });
    expect(template.metadata.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "15020",
    });
    expect(template.spec.serviceAccountName).toBe("public-istio");
    expect(template.spec.securityContext).toEqual({
      sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
    });
    const container = template.spec.containers[0]!;
    expect(container.image).toBe("localhost/ambient/waypoint:dev");
    expect(container.args).toEqual(["--ingress"]);
    // No HBONE port: an ingress gateway listens on its listeners' ports, not 15008.
    expect(container.ports.map((p) => p.containerPort)).toEqual([15020, 15021]);
    expect(container.env.find((e) => e.name === "GATEWAY_NAME")).toEqual({
      name: "GATEWAY_NAME",
      value: "public",
    });
  });

  it("gives it a LoadBalancer Service: the status port, then one port per listener, named after it", () => {
    expect(gatewayObjects(ingress(), OPTS).service.spec).toEqual({
      type: "LoadBalancer",
      selector: { "gateway.networking.k8s.io/gateway-name": "public" },
      ports: [
        { name: "status-port", port: 15021, targetPort: 15021, protocol: "TCP", appProtocol: "tcp" },
        { name: "http", port: 80, targetPort: 80, protocol: "TCP", appProtocol: "http" },
        { name: "https", port: 443, targetPort: 443, protocol: "TCP", appProtocol: "https" },
      ],
    });
  });

  it("leaves a waypoint's pod without --ingress and without the sysctl", () => {
    const template = (
      gatewayObjects(gateway(), OPTS).deployment.spec as {
        template: { spec: { securityContext?: unknown; containers: { args?: unknown }[] } };
      }
    ).template;
    expect(template.spec.securityContext).toBeUndefined();
    expect(template.spec.containers[0]!.args).toBeUndefined();
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
