// Garbage collection by ownerReferences (background cascade, another live owner, Orphan), a
// Namespace taking its objects, and service-account tokens: audiences, expiry, binding to a pod
// whose deletion invalidates the token, and TokenReview's extras as Istio's CA reads them.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startTestApiServer, type TestApiServer } from "./server.js";
import { call } from "./test-client.js";

describe("garbage collection", () => {
  let server: TestApiServer;
  beforeEach(async () => {
    server = await startTestApiServer();
  });
  afterEach(async () => {
    await server.stop();
  });

  const create = async (path: string, body: object) => {
    const answer = await call(server, "POST", path, body);
    expect(answer.status).toBe(201);
    return answer.body;
  };
  const ref = (o: any) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    uid: o.metadata.uid,
  });

  it("deletes dependents whose owners are all gone, cascading; keeps those with another live owner", async () => {
    const gw = await create("/api/v1/namespaces/default/configmaps", { metadata: { name: "owner" } });
    const other = await create("/api/v1/namespaces/default/configmaps", {
      metadata: { name: "other-owner" },
    });
    const deploy = await create("/apis/apps/v1/namespaces/default/deployments", {
      metadata: { name: "waypoint", ownerReferences: [ref(gw)] },
      spec: {
        selector: { matchLabels: { a: "b" } },
        template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c" }] } },
      },
    });
    await create("/api/v1/namespaces/default/pods", {
      metadata: { name: "grandchild", ownerReferences: [ref(deploy)] },
      spec: { containers: [{ name: "c" }] },
    });
    await create("/api/v1/namespaces/default/services", {
      metadata: { name: "shared", ownerReferences: [ref(gw), ref(other)] },
      spec: { ports: [{ port: 80 }] },
    });

    expect((await call(server, "DELETE", "/api/v1/namespaces/default/configmaps/owner")).status).toBe(200);
    expect((await call(server, "GET", "/apis/apps/v1/namespaces/default/deployments/waypoint")).status).toBe(
      404,
    );
    expect((await call(server, "GET", "/api/v1/namespaces/default/pods/grandchild")).status).toBe(404);
    const shared = await call(server, "GET", "/api/v1/namespaces/default/services/shared");
    expect(shared.body.metadata.ownerReferences.map((r: any) => r.name)).toEqual(["other-owner"]);
  });

  it("propagationPolicy=Orphan keeps dependents and drops the reference", async () => {
    const owner = await create("/api/v1/namespaces/default/configmaps", { metadata: { name: "owner" } });
    await create("/api/v1/namespaces/default/secrets", {
      metadata: { name: "dep", ownerReferences: [ref(owner)] },
    });
    await call(server, "DELETE", "/api/v1/namespaces/default/configmaps/owner", {
      propagationPolicy: "Orphan",
    });
    const dep = await call(server, "GET", "/api/v1/namespaces/default/secrets/dep");
    expect(dep.status).toBe(200);
    expect(dep.body.metadata.ownerReferences).toBeUndefined();
  });

  it("a deleted Namespace takes its objects; a new one gets the default ServiceAccount", async () => {
    await create("/api/v1/namespaces", { metadata: { name: "app" } });
    const sa = await call(server, "GET", "/api/v1/namespaces/app/serviceaccounts/default");
    expect(sa.status).toBe(200);
    await create("/api/v1/namespaces/app/configmaps", { metadata: { name: "c" } });
    await call(server, "DELETE", "/api/v1/namespaces/app");
    expect((await call(server, "GET", "/api/v1/namespaces/app/configmaps")).body.items).toEqual([]);
  });
});

describe("service-account tokens", () => {
  let server: TestApiServer;
  beforeEach(async () => {
    server = await startTestApiServer({
      objects: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
        {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name: "ztunnel", namespace: "istio-system" },
        },
        { apiVersion: "v1", kind: "Node", metadata: { name: "node-1" } },
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "ztunnel-abc", namespace: "istio-system" },
          spec: { nodeName: "node-1", serviceAccountName: "ztunnel", containers: [{ name: "z" }] },
        },
      ],
    });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await server.stop();
  });

  const requestToken = (spec: object) =>
    call(server, "POST", "/api/v1/namespaces/istio-system/serviceaccounts/ztunnel/token", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec,
    });
  const review = (token: string, audiences?: string[]) =>
    call(server, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, ...(audiences ? { audiences } : {}) },
    });

  it("a pod-bound token reviews with the pod's name and uid as extras, for its audience only", async () => {
    const pod = (await call(server, "GET", "/api/v1/namespaces/istio-system/pods/ztunnel-abc")).body;
    const tr = await requestToken({
      audiences: ["istio-ca"],
      expirationSeconds: 43200,
      boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "ztunnel-abc" },
    });
    expect(tr.status).toBe(201);
    expect(tr.body.spec).toMatchObject({ audiences: ["istio-ca"], expirationSeconds: 43200 });
    const ok = await review(tr.body.status.token, ["istio-ca"]);
    expect(ok.body.status).toMatchObject({
      authenticated: true,
      audiences: ["istio-ca"],
      user: {
        username: "system:serviceaccount:istio-system:ztunnel",
        groups: expect.arrayContaining([
          "system:serviceaccounts",
          "system:serviceaccounts:istio-system",
          "system:authenticated",
        ]),
        extra: {
          "authentication.kubernetes.io/pod-name": ["ztunnel-abc"],
          "authentication.kubernetes.io/pod-uid": [pod.metadata.uid],
          "authentication.kubernetes.io/node-name": ["node-1"],
        },
      },
    });
    const wrongAudience = await review(tr.body.status.token, ["other"]);
    expect(wrongAudience.body.status.authenticated).toBe(false);
    expect(wrongAudience.body.status.error).toContain("audiences");
    // Not valid against the API either: its audience is istio-ca only.
    const asBearer = await review(tr.body.status.token);
    expect(asBearer.body.status.authenticated).toBe(false);

    // No kubelet finishes a graceful deletion here: delete at once.
    await call(server, "DELETE", "/api/v1/namespaces/istio-system/pods/ztunnel-abc?gracePeriodSeconds=0");
    const afterDelete = await review(tr.body.status.token, ["istio-ca"]);
    expect(afterDelete.body.status).toMatchObject({ authenticated: false });
    expect(afterDelete.body.status.error).toContain("pod istio-system/ztunnel-abc has been deleted");
  });

  it("expires after expirationSeconds; refuses less than 10 minutes and unknown bound kinds", async () => {
    const tr = await requestToken({ audiences: ["istio-ca"], expirationSeconds: 600 });
    expect((await review(tr.body.status.token, ["istio-ca"])).body.status.authenticated).toBe(true);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 601_000);
    const expired = await review(tr.body.status.token, ["istio-ca"]);
    vi.useRealTimers();
    expect(expired.body.status).toMatchObject({ authenticated: false });
    expect(expired.body.status.error).toContain("exp");

    const short = await requestToken({ expirationSeconds: 60 });
    expect(short.body).toMatchObject({ code: 422, reason: "Invalid" });
    expect(short.body.message).toContain("spec.expirationSeconds");
    const badKind = await requestToken({ boundObjectRef: { kind: "Deployment", name: "x" } });
    expect(badKind.body).toMatchObject({ code: 422 });
  });

  it("a token for the API audience authenticates API calls; a garbage one is 401", async () => {
    const tr = await requestToken({});
    const { request } = await import("node:https");
    const get = (token: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL("/api/v1/namespaces", server.url);
        request(
          {
            hostname: url.hostname,
            port: url.port,
            path: url.pathname,
            ca: server.caPem,
            agent: false,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
          .on("error", reject)
          .end();
      });
    expect(await get(tr.body.status.token)).toBe(200);
    expect(await get("garbage")).toBe(401);
    expect(await get(server.adminToken)).toBe(200);
  });
});
