// Both sides of the Kubernetes-mode contract together: ztunnel and a waypoint configured as in their
// pods (Istio's env, the token from `kubectl create token`, the root from ConfigMap
// istio-ca-root-cert) against the control plane in Kubernetes mode on the test API server. ztunnel
// gets xDS and the certificates of its node's pods only; the waypoint its own identity. Loopback
// range 127.121.x.

import { join } from "node:path";
import { createLogger, SpiffeId } from "@ambient/core";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { parseWaypointConfig, Waypoint } from "@ambient/waypoint";
import { parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import {
  type RunningKubeControlPlane,
  setPodStatus,
  startKubeControlPlane,
} from "../utils/kube-controlplane.js";

const logger = createLogger({ level: "silent" });
const id = (ns: string, sa: string) => SpiffeId.parse(`spiffe://cluster.local/ns/${ns}/sa/${sa}`);

const pod = (namespace: string, name: string, sa: string, nodeName: string, labels = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels: { app: name, ...labels } },
  spec: { nodeName, serviceAccountName: sa, containers: [{ name: "c", image: "c" }] },
});
const account = (namespace: string, name: string) => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: { name, namespace },
});

let api: TestApiServer;
let kube: KubeClients;
let env: RunningKubeControlPlane;
let files: TempDir;
const proxies: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  api = await startTestApiServer({
    objects: [
      ...istioCrds(),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "demo", labels: { "istio.io/dataplane-mode": "ambient" } },
      },
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } },
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-b" } },
      account("istio-system", "ztunnel"),
      account("demo", "sleep"),
      account("demo", "httpbin"),
      account("demo", "waypoint"),
      pod("istio-system", "ztunnel-a", "ztunnel", "node-a", { "istio.io/dataplane-mode": "none" }),
      pod("demo", "sleep", "sleep", "node-a"),
      pod("demo", "httpbin", "httpbin", "node-b"),
      pod("demo", "waypoint", "waypoint", "node-a", { "istio.io/dataplane-mode": "none" }),
    ] as never,
  });
  setPodStatus(api, "istio-system", "ztunnel-a", "127.121.1.1");
  setPodStatus(api, "demo", "sleep", "127.121.1.10");
  setPodStatus(api, "demo", "httpbin", "127.121.2.10");
  setPodStatus(api, "demo", "waypoint", "127.121.1.20");
  kube = await kubeClients(api.kubeconfigPath);
  env = await startKubeControlPlane(api);
  files = await tempDir("ambient-kube-pod-files-");
  // What the kubelet mounts: the projected token (audience istio-ca, bound to the pod) and the root.
  await eventually(async () => {
    const r = await kube.kubectl([
      ...["get", "configmap", "istio-ca-root-cert", "-n", "istio-system"],
      ...["-o", "jsonpath={.data.root-cert\\.pem}"],
    ]);
    expect(r.stdout).toContain("BEGIN CERTIFICATE");
    await files.write("root-cert.pem", r.stdout);
  }, 10_000);
  for (const [ns, sa, name] of [
    ["istio-system", "ztunnel", "ztunnel-a"],
    ["demo", "waypoint", "waypoint"],
  ] as const) {
    const r = await kube.kubectl([
      ...["create", "token", sa, "-n", ns, "--audience", "istio-ca"],
      ...["--bound-object-kind", "Pod", "--bound-object-name", name],
    ]);
    expect(r, r.stderr).toMatchObject({ code: 0 });
    await files.write(`${name}.token`, r.stdout);
  }
}, 60_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  await env?.stop();
  await files?.cleanup();
  await kube?.cleanup();
  await api?.stop();
});

/** Istio's chart env for a pod on node-a, dialling the control plane by IP with istiod's name. */
function podEnv(name: string, namespace: string, sa: string, ip: string) {
  return {
    NODE_NAME: "node-a",
    POD_NAME: name,
    POD_NAMESPACE: namespace,
    INSTANCE_IP: ip,
    SERVICE_ACCOUNT: sa,
    XDS_ADDRESS: env.cp.tlsAddress!,
    CA_ADDRESS: env.cp.tlsAddress!,
    CA_ROOT_CERT: join(files.path, "root-cert.pem"),
    AMBIENT_NODE_TOKEN_FILE: join(files.path, `${name}.token`),
    CONTROL_PLANE_SAN: "istiod.istio-system.svc",
  };
}

describe("proxies in pods against the control plane in Kubernetes mode", () => {
  it("ztunnel gets xDS over TLS and the certificates of its node's pods, and only those", async () => {
    const z = await Ztunnel.start(
      parseZtunnelConfig(
        ["--admin-on-node-ip"],
        podEnv("ztunnel-a", "istio-system", "ztunnel", "127.121.1.1"),
      ),
      { logger },
    );
    proxies.push(z);
    await eventually(() => expect(z.readiness()).toEqual({ ready: true, reasons: [] }), 15_000);
    await eventually(() => expect(z.certs.get(id("demo", "sleep"))).toBeDefined(), 10_000);
    expect(z.certs.get(id("demo", "httpbin"))).toBeUndefined();
    // Every pod is a workload (those outside the mesh without HBONE), as istiod publishes them.
    expect(z.state.snapshot().workloads.map((w) => w.name)).toEqual(
      expect.arrayContaining(["httpbin", "sleep"]),
    );
    expect(
      env.logs.filter((l) => l.msg === "certificate signed").map((l) => [l.caller, l.identity]),
    ).toContainEqual([
      "system:serviceaccount:istio-system:ztunnel (pod istio-system/ztunnel-a)",
      id("demo", "sleep").toString(),
    ]);
  });

  it("a waypoint gets its own identity without impersonation", async () => {
    const w = await Waypoint.start(
      parseWaypointConfig(["--admin-port", "0"], {
        ...podEnv("waypoint", "demo", "waypoint", "127.121.1.20"),
        GATEWAY_NAME: "waypoint",
      }),
      { logger },
    );
    proxies.push(w);
    await eventually(() => expect(w.certs.get(id("demo", "waypoint"))).toBeDefined(), 15_000);
    await eventually(() => expect(w.readiness().ready).toBe(true), 10_000);
  });
});
