// `ambientctl waypoint` against the test API server with the control plane's waypoint controller
// running, checked with the real kubectl: apply (namespace, per-service, --enroll-namespace,
// --overwrite, --wait), list and status with istioctl's columns, delete with garbage collection of
// what the controller made, per-service and per-service-account waypoints as translation attaches
// them, and every bad input refused with a message naming it.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startWaypointController, translate, type WaypointController } from "@ambient/controlplane";
import { createMemoryLogger } from "@ambient/core";
import { run } from "@ambient/ctl";
import type { KubeObject } from "@ambient/kube";
import { loadKubeConfig } from "@ambient/kube/api";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";

const AMBIENT = { "istio.io/dataplane-mode": "ambient" };
const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});

let api: TestApiServer;
let kube: KubeClients;
let home: TempDir;
let controller: WaypointController | undefined;

beforeEach(async () => {
  api = await startTestApiServer({
    objects: [
      ...istioCrds(),
      ns("demo", AMBIENT),
      ns("plain"),
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "reviews", namespace: "demo" },
        spec: { selector: { app: "reviews" }, ports: [{ name: "http", port: 9080 }] },
      },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "ratings", namespace: "demo" },
        spec: { selector: { app: "ratings" }, ports: [{ name: "http", port: 9080 }] },
      },
    ] as never,
  });
  kube = await kubeClients(api.kubeconfigPath);
  home = await tempDir("ambient-ctl-home-");
  controller = await startWaypointController({
    kc: loadKubeConfig(api.kubeconfigPath),
    logger: createMemoryLogger("debug").logger,
    image: "localhost/ambient/waypoint:test",
    controlPlaneAddress: "istiod.istio-system.svc:15012",
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    clusterDomain: "cluster.local",
    reflector: { backoff: { initialMs: 50, maxMs: 200 } },
  });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await controller?.stop();
  controller = undefined;
  await kube.cleanup();
  await home.cleanup();
  await api.stop();
});

/** ambientctl as a user runs it: KUBECONFIG in the environment, stdout and stderr captured. */
async function ambientctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const lines: string[] = [];
  let err = "";
  const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    const code = await run(argv, { KUBECONFIG: api.kubeconfigPath, HOME: home.path }, (s) => lines.push(s));
    return { code, out: lines.join("\n"), err };
  } finally {
    spy.mockRestore();
  }
}

async function kubectl(...args: string[]): Promise<string> {
  const r = await kube.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}
const getJson = async (...args: string[]) => JSON.parse(await kubectl("get", ...args, "-o", "json"));

async function markReady(name: string, namespace = "demo"): Promise<void> {
  await kubectl(
    "patch",
    "deployment",
    name,
    "-n",
    namespace,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } }),
  );
}

describe("ambientctl waypoint", () => {
  it("applies a namespace waypoint, lists it, shows its status, waits for it and deletes it", async () => {
    expect((await ambientctl("waypoint", "list", "-n", "demo")).out).toBe("No waypoints found.");

    const applied = await ambientctl("waypoint", "apply", "-n", "demo", "--enroll-namespace");
    expect(applied).toMatchObject({ code: 0, err: "" });
    expect(applied.out).toBe(
      [
        "✅ waypoint demo/waypoint applied",
        '✅ namespace demo labeled with "istio.io/use-waypoint: waypoint"',
      ].join("\n"),
    );
    const gw = await getJson("gateway", "waypoint", "-n", "demo");
    expect(gw.spec).toEqual({
      gatewayClassName: "istio-waypoint",
      listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
    });
    expect((await getJson("namespace", "demo")).metadata.labels).toMatchObject({
      "istio.io/use-waypoint": "waypoint",
    });

    // The controller deploys it; no pod is ready yet.
    const deploy = await eventually(() => getJson("deployment", "waypoint", "-n", "demo"));
    expect(deploy.spec.template.metadata.labels).toMatchObject({ "istio.io/dataplane-mode": "none" });
    await eventually(async () =>
      expect(await kubectl("get", "gateway", "-n", "demo")).toMatch(
        /waypoint\s+istio-waypoint\s+\S+\s+False/,
      ),
    );
    expect((await ambientctl("waypoint", "list", "-n", "demo")).out).toMatch(
      /^NAME\s+REVISION\s+TRAFFIC TYPE\s+PROGRAMMED\nwaypoint\s+default\s+service\s+False$/,
    );
    expect((await ambientctl("waypoint", "status", "-n", "demo")).out).toMatch(
      /^NAME\s+STATUS\s+TYPE\s+REASON\s+MESSAGE\nwaypoint\s+False\s+Programmed\s+AddressNotAssigned\s+no waypoint pod is ready yet \(Deployment demo\/waypoint: 0 of 1 ready\)$/,
    );

    // --wait gives up after --waypoint-timeout, naming what the waypoint still waits for.
    const timedOut = await ambientctl(
      "waypoint",
      "apply",
      "-n",
      "demo",
      "--wait",
      "--waypoint-timeout",
      "1s",
    );
    expect(timedOut.code).not.toBe(0);
    expect(timedOut.err).toContain(
      "timed out after 1s while waiting for waypoint demo/waypoint: Programmed=False (AddressNotAssigned): no waypoint pod is ready yet",
    );

    await markReady("waypoint");
    const waited = await ambientctl("waypoint", "apply", "-n", "demo", "-w");
    expect(waited.out).toBe("✅ waypoint demo/waypoint applied\n✅ waypoint demo/waypoint is ready!");
    expect((await ambientctl("waypoint", "list", "-A")).out).toMatch(
      /^NAMESPACE\s+NAME\s+REVISION\s+TRAFFIC TYPE\s+PROGRAMMED\ndemo\s+waypoint\s+default\s+service\s+True$/,
    );
    expect((await ambientctl("waypoint", "status", "-n", "demo", "--wait")).out).toMatch(
      /waypoint\s+True\s+Programmed\s+Programmed\s+Resource programmed, assigned to service\(s\) waypoint\.demo\.svc\.cluster\.local:15008/,
    );

    const deleted = await ambientctl("waypoint", "delete", "waypoint", "missing", "-n", "demo");
    expect(deleted.code).toBe(0);
    expect(deleted.out).toContain("waypoint demo/waypoint deleted");
    expect(deleted.out).toContain("waypoint demo/missing not found");
    expect(deleted.out).toContain(
      "⚠️ Warning: namespace demo still has istio.io/use-waypoint=waypoint: its traffic fails closed until you run `kubectl label namespace demo istio.io/use-waypoint-`",
    );
    await eventually(async () => {
      for (const kind of ["gateway", "deployment", "service", "serviceaccount"]) {
        expect((await kube.kubectl(["get", kind, "waypoint", "-n", "demo"])).stderr).toMatch(/not found/);
      }
    });
  });

  it("makes per-service (--for service) and per-service-account waypoints that translation attaches", async () => {
    const svcWp = await ambientctl(
      "waypoint",
      "apply",
      "-n",
      "demo",
      "--name",
      "reviews-wp",
      "--for",
      "service",
    );
    expect(svcWp.out).toBe("✅ waypoint demo/reviews-wp applied");
    expect((await getJson("gateway", "reviews-wp", "-n", "demo")).metadata.labels).toEqual({
      "istio.io/waypoint-for": "service",
    });
    await kubectl("label", "service", "reviews", "-n", "demo", "istio.io/use-waypoint=reviews-wp");

    await writeFile(
      join(home.path, "sa-wp.yaml"),
      `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ratings-sa-wp
  namespace: demo
  labels: {istio.io/waypoint-for: workload}
  annotations: {istio.io/for-service-account: ratings}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-1, namespace: demo, labels: {app: ratings}}
spec:
  serviceAccountName: ratings
  nodeName: node-a
  containers: [{name: app, image: ratings}]
`,
    );
    await kubectl("apply", "-f", join(home.path, "sa-wp.yaml"));
    await kubectl(
      "patch",
      "pod",
      "ratings-1",
      "-n",
      "demo",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { phase: "Running", podIP: "10.244.0.7", podIPs: [{ ip: "10.244.0.7" }] } }),
    );
    await eventually(async () => {
      await getJson("deployment", "reviews-wp", "-n", "demo");
      await getJson("deployment", "ratings-sa-wp", "-n", "demo");
    });
    expect((await ambientctl("waypoint", "list", "-n", "demo")).out).toMatch(
      /ratings-sa-wp\s+default\s+workload\s+False\nreviews-wp\s+default\s+service\s+False/,
    );

    // What the control plane would publish from these objects: reviews goes through its waypoint,
    // the ratings pod (service account ratings) through the per-service-account one.
    const objects: KubeObject[] = [];
    for (const kind of ["namespaces", "services", "pods", "gateways"])
      objects.push(...(await getJson(kind, "-A")).items);
    const xds = translate(objects);
    const reviews = xds.services.find((s) => s.name === "reviews")!;
    expect(reviews.waypoint?.hostname).toEqual({
      namespace: "demo",
      hostname: "reviews-wp.demo.svc.cluster.local",
    });
    expect(xds.services.find((s) => s.name === "ratings")?.waypoint).toBeUndefined();
    const ratingsPod = xds.workloads.find((w) => w.name === "ratings-1")!;
    expect(ratingsPod.waypoint?.hostname).toEqual({
      namespace: "demo",
      hostname: "ratings-sa-wp.demo.svc.cluster.local",
    });
  });

  it("refuses bad input with istioctl's messages, and replaces an enrolment only with --overwrite", async () => {
    const badFor = await ambientctl("waypoint", "apply", "-n", "demo", "--for", "pods");
    expect(badFor.code).toBe(2);
    expect(badFor.err).toContain(
      "invalid traffic type: pods. Valid options are: [all none service workload]",
    );

    const noNs = await ambientctl("waypoint", "apply", "-n", "nope");
    expect(noNs.code).toBe(2);
    expect(noNs.err).toContain("namespace: nope not found");

    expect((await ambientctl("waypoint", "apply", "--name", "none", "-n", "demo")).err).toContain(
      "invalid name provided for waypoint, 'none' is a reserved value",
    );
    expect((await ambientctl("waypoint", "delete", "-n", "demo")).err).toContain(
      "must specify a waypoint name or delete all using --all",
    );
    expect((await ambientctl("waypoint", "delete", "--all", "x", "-n", "demo")).err).toContain(
      "cannot specify waypoint names when deleting all waypoints",
    );
    expect((await ambientctl("waypoint", "list", "--context", "elsewhere")).err).toContain(
      'context "elsewhere" does not exist',
    );
    expect((await ambientctl("waypoint", "frobnicate")).err).toContain('unknown subcommand "frobnicate"');

    // An existing enrolment is kept unless --overwrite.
    expect((await ambientctl("waypoint", "apply", "-n", "demo", "--enroll-namespace")).code).toBe(0);
    const second = await ambientctl(
      "waypoint",
      "apply",
      "-n",
      "demo",
      "--name",
      "other",
      "--enroll-namespace",
    );
    expect(second.code).toBe(2);
    expect(second.err).toContain(
      "namespace demo already has an enrolled waypoint (istio.io/use-waypoint=waypoint); add --overwrite to replace it with other",
    );
    expect((await getJson("namespace", "demo")).metadata.labels["istio.io/use-waypoint"]).toBe("waypoint");
    expect((await kube.kubectl(["get", "gateway", "other", "-n", "demo"])).stderr).toMatch(/not found/);
    const overwritten = await ambientctl(
      "waypoint",
      "apply",
      "-n",
      "demo",
      "--name",
      "other",
      "--enroll-namespace",
      "--overwrite",
    );
    expect(overwritten.out).toContain('✅ namespace demo labeled with "istio.io/use-waypoint: other"');
    expect((await getJson("namespace", "demo")).metadata.labels["istio.io/use-waypoint"]).toBe("other");

    // A namespace outside ambient gets istioctl's warning.
    expect((await ambientctl("waypoint", "apply", "-n", "plain", "--enroll-namespace")).out).toContain(
      "⚠️ Warning: namespace is not enrolled in ambient. Consider running `kubectl label namespace plain istio.io/dataplane-mode=ambient`",
    );

    // A Gateway of that name written by another tool is not taken over.
    await writeFile(
      join(home.path, "gw.yaml"),
      "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: demo}\nspec:\n  gatewayClassName: istio\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n",
    );
    await kubectl("apply", "--server-side", "-f", join(home.path, "gw.yaml"));
    const clash = await ambientctl("waypoint", "apply", "-n", "demo", "--name", "ingress");
    expect(clash.code).toBe(2);
    expect(clash.err).toContain("Gateway demo/ingress exists and was written by another tool:");
    expect(clash.err).toContain('.spec.gatewayClassName is owned by "kubectl"');
  });

  it("uses the kubeconfig's context namespace when -n is not given, as kubectl does", async () => {
    await kubectl("config", "set-context", "--current", "--namespace", "demo");
    // kube.kubectl edits the kubeconfig file itself; ambientctl reads the same file.
    const applied = await ambientctl("waypoint", "apply");
    expect(applied.out).toBe("✅ waypoint demo/waypoint applied");
  });
});
