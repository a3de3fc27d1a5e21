// The built-in kinds charts create besides workloads: RBAC (stored, not enforced) and
// PodDisruptionBudgets, at their real group-versions and scopes, in discovery and in storage.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApiServer, type TestApiServer } from "./server.js";
import { call } from "./test-client.js";

describe("RBAC and PodDisruptionBudget kinds", () => {
  let server: TestApiServer;
  beforeAll(async () => {
    server = await startTestApiServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("are discovered with their scopes", async () => {
    const rbac = await call(server, "GET", "/apis/rbac.authorization.k8s.io/v1");
    expect(rbac.status).toBe(200);
    const scopes = Object.fromEntries(rbac.body.resources.map((r: any) => [r.name, r.namespaced]));
    expect(scopes).toMatchObject({
      clusterroles: false,
      clusterrolebindings: false,
      roles: true,
      rolebindings: true,
    });
    const policy = await call(server, "GET", "/apis/policy/v1");
    const pdb = policy.body.resources.find((r: any) => r.name === "poddisruptionbudgets");
    expect(pdb).toMatchObject({ namespaced: true, kind: "PodDisruptionBudget", shortNames: ["pdb"] });
  });

  it("are stored: a cluster-scoped ClusterRole, a namespaced RoleBinding, a PDB whose status is its own", async () => {
    const role = await call(server, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
      metadata: { name: "reader" },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
    });
    expect(role.status).toBe(201);
    expect(role.body.metadata.namespace).toBeUndefined();
    const binding = await call(
      server,
      "POST",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
      {
        metadata: { name: "read" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "reader" },
        subjects: [{ kind: "ServiceAccount", name: "default", namespace: "default" }],
      },
    );
    expect(binding.status).toBe(201);
    expect(
      (await call(server, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/reader")).body.rules,
    ).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }]);

    const pdb = await call(server, "POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", {
      metadata: { name: "p" },
      spec: { maxUnavailable: 1, selector: { matchLabels: { app: "x" } } },
      status: { currentHealthy: 3 },
    });
    expect(pdb.status).toBe(201);
    expect(pdb.body.status).toBeUndefined();
    expect(pdb.body.spec.maxUnavailable).toBe(1);
  });
});
