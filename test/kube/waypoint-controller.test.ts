// The waypoint controller against the test API server, driven with the real kubectl: the
// GatewayClass appears, a Gateway of class istio-waypoint gets its ServiceAccount, Deployment and
// Service (labels, ownerReferences, the pod template), `kubectl get gateway` shows PROGRAMMED False
// until the Deployment reports a ready pod (as its controller would) and then True with the Service's
// cluster IP; an edited image is taken back; deleting the Gateway lets garbage collection remove
// the rest; a deleted GatewayClass comes back; a per-service-account waypoint is deployed the same way.
// A Gateway of class istio (an ingress gateway) gets `<name>-istio` objects: the proxy with
// `--ingress`, a LoadBalancer Service with its listeners' ports; the GatewayClass istio is Accepted.

import { startWaypointController, type WaypointController } from "@ambient/controlplane";
import { createMemoryLogger } from "@ambient/core";
import { loadKubeConfig } from "@ambient/kube/api";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";

const WAYPOINT = (
  name: string,
  extra: Record<string, unknown> = {},
) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: demo
${Object.keys(extra).length ? `  annotations: ${JSON.stringify(extra)}\n` : ""}spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
`;

let api: TestApiServer;
let kube: KubeClients;
let controller: WaypointController | undefined;
let logs: ReturnType<typeof createMemoryLogger>["records"];

beforeEach(async () => {
  api = await startTestApiServer({
    objects: [...istioCrds(), { apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } }] as never,
  });
  kube = await kubeClients(api.kubeconfigPath);
  const memory = createMemoryLogger("debug");
  logs = memory.records;
  controller = await startWaypointController({
    kc: loadKubeConfig(api.kubeconfigPath),
    logger: memory.logger,
    image: "localhost/ambient/waypoint:test",
    controlPlaneAddress: "istiod.istio-system.svc:15012",
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    clusterDomain: "cluster.local",
    reflector: { backoff: { initialMs: 50, maxMs: 200 } },
  });
});

afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  await kube.cleanup();
  await api.stop();
});

async function kubectl(...args: string[]): Promise<string> {
  const r = await kube.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function applyYaml(yaml: string): Promise<void> {
  const { writeFile, mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "ambient-wp-"));
  await writeFile(join(dir, "gw.yaml"), yaml);
  await kubectl("apply", "-f", join(dir, "gw.yaml"));
}

const getJson = async (...args: string[]) => JSON.parse(await kubectl("get", ...args, "-o", "json"));

/** What the Deployment controller and kubelet would report once the waypoint pod passes its probe. */
async function markReady(name: string): Promise<void> {
  await kubectl(
    "patch",
    "deployment",
    name,
    "-n",
    "demo",
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } }),
  );
}

describe("waypoint controller", () => {
  it("creates the GatewayClass istio-waypoint, owned by the mesh controller and Accepted", async () => {
    const cls = await eventually(async () => {
      const c = await getJson("gatewayclass", "istio-waypoint");
      expect(c.status?.conditions?.[0]).toMatchObject({ type: "Accepted", status: "True" });
      return c;
    });
    expect(cls.spec.controllerName).toBe("istio.io/mesh-controller");
    expect(await kubectl("get", "gatewayclass")).toMatch(/istio-waypoint\s+istio.io\/mesh-controller\s+True/);

    // Deleted by someone: it comes back.
    await kubectl("delete", "gatewayclass", "istio-waypoint");
    await eventually(async () =>
      expect((await getJson("gatewayclass", "istio-waypoint")).metadata.uid).not.toBe(cls.metadata.uid),
    );
  });

  it("deploys a Gateway as ServiceAccount, Deployment and Service, Programmed once a pod is ready, removed with it", async () => {
    await applyYaml(WAYPOINT("waypoint"));
    const gw = await getJson("gateway", "waypoint", "-n", "demo");
    const owner = [
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "waypoint", uid: gw.metadata.uid },
    ];
    const managed = {
      "gateway.networking.k8s.io/gateway-name": "waypoint",
      "gateway.istio.io/managed": "istio.io-mesh-controller",
    };
    const [sa, deploy, svc] = await eventually(async () =>
      Promise.all([
        getJson("serviceaccount", "waypoint", "-n", "demo", "--show-managed-fields"),
        getJson("deployment", "waypoint", "-n", "demo", "--show-managed-fields"),
        getJson("service", "waypoint", "-n", "demo", "--show-managed-fields"),
      ]),
    );
    for (const obj of [sa, deploy, svc]) {
      expect(obj.metadata.labels).toMatchObject(managed);
      expect(obj.metadata.ownerReferences).toEqual(owner);
      expect(obj.metadata.managedFields.map((m: { manager: string }) => m.manager)).toContain(
        "istio.io/gateway-controller",
      );
    }
    const pod = deploy.spec.template;
    expect(pod.metadata.labels).toMatchObject({ "istio.io/dataplane-mode": "none", ...managed });
    expect(pod.spec.serviceAccountName).toBe("waypoint");
    expect(pod.spec.containers[0].image).toBe("localhost/ambient/waypoint:test");
    expect(svc.spec.ports.map((p: { name: string; port: number }) => `${p.name}:${p.port}`)).toEqual([
      "status-port:15021",
      "mesh:15008",
    ]);

    // No pod is ready: not Programmed, with the reason; kubectl's columns show it.
    await eventually(async () => {
      const { status } = await getJson("gateway", "waypoint", "-n", "demo");
      expect(status.conditions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: "Accepted", status: "True" }),
          expect.objectContaining({
            type: "Programmed",
            status: "False",
            reason: "AddressNotAssigned",
            message: "no waypoint pod is ready yet (Deployment demo/waypoint: 0 of 1 ready)",
          }),
        ]),
      );
    });
    expect(await kubectl("get", "gateway", "-n", "demo")).toMatch(
      new RegExp(`waypoint\\s+istio-waypoint\\s+${svc.spec.clusterIP.replace(/\./g, "\\.")}\\s+False`),
    );

    await markReady("waypoint");
    await eventually(async () =>
      expect(await kubectl("get", "gateway", "-n", "demo")).toMatch(/waypoint\s+istio-waypoint\s+\S+\s+True/),
    );
    const { status } = await getJson("gateway", "waypoint", "-n", "demo");
    expect(status.addresses).toEqual([{ type: "IPAddress", value: svc.spec.clusterIP }]);
    expect(status.conditions.find((c: { type: string }) => c.type === "Programmed").message).toBe(
      "Resource programmed, assigned to service(s) waypoint.demo.svc.cluster.local:15008",
    );

    // Someone edits the image: the controller takes its field back.
    await kubectl("set", "image", "deployment/waypoint", "-n", "demo", "istio-proxy=evil:latest");
    await eventually(async () =>
      expect(
        (await getJson("deployment", "waypoint", "-n", "demo")).spec.template.spec.containers[0].image,
      ).toBe("localhost/ambient/waypoint:test"),
    );

    await kubectl("delete", "gateway", "waypoint", "-n", "demo");
    await eventually(async () => {
      for (const kind of ["serviceaccount", "deployment", "service"]) {
        const r = await kube.kubectl(["get", kind, "waypoint", "-n", "demo"]);
        expect(r.stderr).toMatch(/NotFound|not found/);
      }
    });
    expect(logs.some((r) => r.level === "warn" || r.level === "error")).toBe(false);
  });

  it("deploys a per-service-account waypoint (istio.io/for-service-account) the same way", async () => {
    await applyYaml(WAYPOINT("reviews-wp", { "istio.io/for-service-account": "reviews" }));
    const deploy = await eventually(() => getJson("deployment", "reviews-wp", "-n", "demo"));
    expect(deploy.spec.template.spec.serviceAccountName).toBe("reviews-wp");
    await markReady("reviews-wp");
    await eventually(async () =>
      expect(await kubectl("get", "gateway", "reviews-wp", "-n", "demo")).toMatch(
        /reviews-wp\s+istio-waypoint\s+\S+\s+True/,
      ),
    );
  });

  it("deletes what it made when a Gateway leaves the istio-waypoint class (for istio: an ingress gateway's instead)", async () => {
    await applyYaml(WAYPOINT("waypoint"));
    await eventually(() => getJson("deployment", "waypoint", "-n", "demo"));
    const toClass = (cls: string) =>
      kubectl(
        "patch",
        "gateway",
        "waypoint",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { gatewayClassName: cls } }),
      );
    await toClass("istio");
    await eventually(async () => {
      for (const kind of ["serviceaccount", "deployment", "service"]) {
        expect((await kube.kubectl(["get", kind, "waypoint", "-n", "demo"])).stderr).toMatch(/not found/);
        await getJson(kind, "waypoint-istio", "-n", "demo");
      }
    });
    expect(
      logs.some((r) =>
        String(r.msg).includes(
          "deleted Deployment waypoint (the Gateway is no longer of class istio-waypoint)",
        ),
      ),
    ).toBe(true);

    await toClass("example.com/other");
    await eventually(async () => {
      for (const kind of ["serviceaccount", "deployment", "service"])
        expect((await kube.kubectl(["get", kind, "waypoint-istio", "-n", "demo"])).stderr).toMatch(
          /not found/,
        );
    });
  });

  it("leaves Gateways of other classes alone", async () => {
    await applyYaml(WAYPOINT("other").replace("istio-waypoint", "example.com/other"));
    await applyYaml(WAYPOINT("waypoint"));
    await eventually(() => getJson("deployment", "waypoint", "-n", "demo"));
    expect((await kube.kubectl(["get", "deployment", "other", "-n", "demo"])).stderr).toMatch(
      /NotFound|not found/,
    );
    expect((await getJson("gateway", "other", "-n", "demo")).status ?? {}).not.toHaveProperty("conditions");
  });
});

const INGRESS = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: public
  namespace: demo
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
  - name: https
    port: 443
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs:
      - name: public-cert
`;

describe("waypoint controller: Gateways of class istio (ingress gateways)", () => {
  it("creates the GatewayClass istio, owned by Istio's gateway controller and Accepted", async () => {
    const cls = await eventually(async () => {
      const c = await getJson("gatewayclass", "istio");
      expect(c.status?.conditions?.[0]).toMatchObject({ type: "Accepted", status: "True" });
      return c;
    });
    expect(cls.spec.controllerName).toBe("istio.io/gateway-controller");
    expect(await kubectl("get", "gatewayclass")).toMatch(/istio\s+istio.io\/gateway-controller\s+True/);
  });

  it("deploys public-istio: the proxy with --ingress, a LoadBalancer Service per listener; Programmed; removed with it", async () => {
    await applyYaml(INGRESS);
    const gw = await getJson("gateway", "public", "-n", "demo");
    const owner = [
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "public", uid: gw.metadata.uid },
    ];
    const managed = {
      "gateway.networking.k8s.io/gateway-name": "public",
      "gateway.networking.k8s.io/gateway-class-name": "istio",
      "gateway.istio.io/managed": "istio.io-gateway-controller",
    };
    const [sa, deploy, svc] = await eventually(async () =>
      Promise.all([
        getJson("serviceaccount", "public-istio", "-n", "demo", "--show-managed-fields"),
        getJson("deployment", "public-istio", "-n", "demo", "--show-managed-fields"),
        getJson("service", "public-istio", "-n", "demo", "--show-managed-fields"),
      ]),
    );
    for (const obj of [sa, deploy, svc]) {
      expect(obj.metadata.labels).toMatchObject(managed);
      expect(obj.metadata.ownerReferences).toEqual(owner);
      expect(obj.metadata.managedFields.map((m: { manager: string }) => m.manager)).toContain(
        "istio.io/gateway-controller",
      );
    }
    expect(deploy.spec.selector).toEqual({
      matchLabels: { "gateway.networking.k8s.io/gateway-name": "public" },
    });
    const pod = deploy.spec.template;
    expect(pod.metadata.labels).toMatchObject({
      ...managed,
      "istio.io/dataplane-mode": "none",
      "sidecar.istio.io/inject": "false",
    });
    expect(pod.metadata.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "15020",
    });
    expect(pod.spec.serviceAccountName).toBe("public-istio");
    expect(pod.spec.securityContext).toEqual({
      sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
    });
    const container = pod.spec.containers[0];
    expect(container.image).toBe("localhost/ambient/waypoint:test");
    expect(container.args).toEqual(["--ingress"]);
    expect(container.env).toContainEqual({ name: "GATEWAY_NAME", value: "public" });
    expect(svc.spec.type).toBe("LoadBalancer");
    expect(svc.spec.selector).toEqual({ "gateway.networking.k8s.io/gateway-name": "public" });
    expect(
      svc.spec.ports.map(
        (p: { name: string; port: number; targetPort: number }) => `${p.name}:${p.port}:${p.targetPort}`,
      ),
    ).toEqual(["status-port:15021:15021", "http:80:80", "https:443:443"]);

    await eventually(async () => {
      const { status } = await getJson("gateway", "public", "-n", "demo");
      expect(status.conditions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: "Accepted", status: "True" }),
          expect.objectContaining({
            type: "Programmed",
            status: "False",
            message: "no gateway pod is ready yet (Deployment demo/public-istio: 0 of 1 ready)",
          }),
        ]),
      );
    });
    await markReady("public-istio");
    // No cloud assigns the LoadBalancer an ingress here: the address is the cluster IP.
    const ip = svc.spec.clusterIP.replace(/\./g, "\\.");
    await eventually(async () =>
      expect(await kubectl("get", "gateway", "public", "-n", "demo")).toMatch(
        new RegExp(`public\\s+istio\\s+${ip}\\s+True`),
      ),
    );
    const { status } = await getJson("gateway", "public", "-n", "demo");
    expect(status.addresses).toEqual([{ type: "IPAddress", value: svc.spec.clusterIP }]);

    // The cloud's load balancer comes up: its address replaces the cluster IP.
    await kubectl(
      "patch",
      "service",
      "public-istio",
      "-n",
      "demo",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: "203.0.113.7" }] } } }),
    );
    await eventually(async () =>
      expect((await getJson("gateway", "public", "-n", "demo")).status.addresses).toEqual([
        { type: "IPAddress", value: "203.0.113.7" },
      ]),
    );

    await kubectl("delete", "gateway", "public", "-n", "demo");
    await eventually(async () => {
      for (const kind of ["serviceaccount", "deployment", "service"]) {
        const r = await kube.kubectl(["get", kind, "public-istio", "-n", "demo"]);
        expect(r.stderr).toMatch(/NotFound|not found/);
      }
    });
    expect(logs.some((r) => r.level === "warn" || r.level === "error")).toBe(false);
  });
});
