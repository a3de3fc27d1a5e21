// `ambientctl check` against a cluster with every kind of problem it looks for, built directly in
// the test API server (no kubelet: pods' status is patched as a kubelet would report it): a CRD
// missing, a node without ztunnel, a CNI agent not Ready, a namespace using a waypoint that does
// not exist, a refused AuthorizationPolicy and a data plane on another version than istiod. Each
// problem is named with the command that fixes it, and the exit code is 1. (The healthy case runs
// on the loopback cluster in cluster-loopback.test.ts.)

import { run } from "@ambient/ctl";
import { loadKubeConfig } from "@ambient/kube/api";
import { istioCrds, kube, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

let server: TestApiServer;

const pod = (
  name: string,
  labels: Record<string, string>,
  node: string,
  image: string,
  env: string[] = [],
) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "istio-system", labels },
  spec: {
    nodeName: node,
    containers: [
      { name: "main", image, env: env.map((n) => ({ name: n, value: "/var/run/ztunnel/ztunnel.sock" })) },
    ],
  },
});
const readyStatus = (ready: boolean) => ({
  status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

beforeAll(async () => {
  const crds = istioCrds().filter((c) => c.metadata.name !== "requestauthentications.security.istio.io");
  server = await startTestApiServer({
    objects: [
      ...crds,
      ...["node-a", "node-b"].map((name) => ({ apiVersion: "v1", kind: "Node", metadata: { name } })),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "shop", labels: { "istio.io/use-waypoint": "gone" } },
      },
      // Opted out: "none" names no waypoint.
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "quiet", labels: { "istio.io/use-waypoint": "none" } },
      },
      pod("istiod", { app: "istiod" }, "node-a", "ambient/controlplane:1.1"),
      pod("ztunnel-a", { app: "ztunnel" }, "node-a", "ambient/ztunnel:1.0", ["INPOD_UDS"]),
      pod("istio-cni-node-a", { "k8s-app": "istio-cni-node" }, "node-a", "ambient/install-cni:1.1"),
      pod("istio-cni-node-b", { "k8s-app": "istio-cni-node" }, "node-b", "ambient/install-cni:1.1"),
      {
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: "bad", namespace: "shop" },
        spec: { action: "ALLOW" },
      },
    ] as never,
  });
  const client = new kube.KubeClient(loadKubeConfig(server.kubeconfigPath));
  for (const [name, ready] of [
    ["istiod", true],
    ["ztunnel-a", true],
    ["istio-cni-node-a", false],
    ["istio-cni-node-b", true],
  ] as const) {
    await client.mergePatch(`/api/v1/namespaces/istio-system/pods/${name}/status`, readyStatus(ready));
  }
  await client.mergePatch("/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/bad/status", {
    status: {
      conditions: [
        { type: "ZtunnelAccepted", status: "False", message: "rule 0: unknown field operation.hostz" },
      ],
    },
  });
}, 60_000);

afterAll(() => server?.stop());

async function check(env: Record<string, string>) {
  const lines: string[] = [];
  const errors: string[] = [];
  const spy = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
    errors.push(String(s));
    return true;
  });
  try {
    const code = await run(["check"], env, (l) => lines.push(l));
    return { code, out: lines.join("\n"), err: errors.join("") };
  } finally {
    spy.mockRestore();
  }
}

describe("ambientctl check", () => {
  it("names every problem with the command that fixes it and exits 1", async () => {
    const r = await check({ KUBECONFIG: server.kubeconfigPath });
    expect(r.code, r.err).toBe(1);
    expect(r.out).toMatch(
      /problem {2}CRDs: CRD requestauthentications\.security\.istio\.io is missing\n\s+fix: helm upgrade --install ambient deploy\/charts\/ambient -n istio-system --reuse-values/,
    );
    expect(r.out).toMatch(
      /problem {2}ztunnel: node node-b runs no ztunnel pod \(app=ztunnel in istio-system\)\n\s+fix: kubectl describe daemonset ztunnel -n istio-system/,
    );
    expect(r.out).toMatch(
      /problem {2}CNI: CNI agent pod istio-cni-node-a on node node-a is not Ready\n\s+fix: kubectl logs -n istio-system istio-cni-node-a/,
    );
    expect(r.out).toMatch(
      /problem {2}waypoints: namespace shop uses waypoint shop\/gone, which does not exist.*\n\s+fix: ambientctl waypoint apply -n shop --name gone/,
    );
    expect(r.out).not.toContain("namespace quiet");
    expect(r.out).toMatch(
      /problem {2}policies: AuthorizationPolicy shop\/bad is not accepted \(ZtunnelAccepted\): rule 0: unknown field operation\.hostz\n\s+fix: kubectl describe authorizationpolicy -n shop bad/,
    );
    expect(r.out).toMatch(
      /problem {2}versions: components run different versions: istiod 1\.1, ztunnel 1\.0, istio-cni 1\.1\n\s+fix: .* --set global\.tag=1\.1/,
    );
    expect(r.out).toContain("6 problems found.");
  });

  it("without a cluster to reach says how to give one", async () => {
    const r = await check({ HOME: "/nonexistent-ambient-home" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG/);
  });
});
