// The control plane's Kubernetes mode runs the waypoint controller: a Gateway of class
// istio-waypoint applied with the real kubectl gets its Deployment (the image from
// --waypoint-image), Service and ServiceAccount; the controller's own behaviour is covered in
// test/kube/waypoint-controller.test.ts.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import { type RunningKubeControlPlane, startKubeControlPlane } from "../utils/kube-controlplane.js";

let api: TestApiServer;
let kube: KubeClients;
let cp: RunningKubeControlPlane;
let dir: TempDir;

beforeAll(async () => {
  api = await startTestApiServer({
    objects: [
      ...istioCrds(),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } },
    ] as never,
  });
  kube = await kubeClients(api.kubeconfigPath);
  dir = await tempDir("ambient-kube-waypoints-");
  cp = await startKubeControlPlane(api);
});

afterAll(async () => {
  await cp?.stop();
  await api?.stop();
  await dir?.cleanup();
});

describe("Kubernetes mode: the waypoint controller", () => {
  it("a Gateway of class istio-waypoint applied with kubectl gets its waypoint Deployment, Service and ServiceAccount", async () => {
    const file = join(dir.path, "waypoint.yaml");
    await writeFile(
      file,
      [
        "apiVersion: gateway.networking.k8s.io/v1",
        "kind: Gateway",
        "metadata: {name: waypoint, namespace: demo}",
        "spec:",
        "  gatewayClassName: istio-waypoint",
        "  listeners: [{name: mesh, port: 15008, protocol: HBONE}]",
        "",
      ].join("\n"),
    );
    const applied = await kube.kubectl(["apply", "-f", file]);
    expect(applied.stderr).toBe("");
    const image = await eventually(async () => {
      const r = await kube.kubectl([
        "get",
        "deployment",
        "waypoint",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
      ]);
      expect(r.code).toBe(0);
      return r.stdout;
    }, 15_000);
    expect(image).toBe("localhost/ambient/waypoint:latest");
    for (const kind of ["service", "serviceaccount"]) {
      expect((await kube.kubectl(["get", kind, "waypoint", "-n", "demo", "-o", "name"])).code).toBe(0);
    }
  });
});
