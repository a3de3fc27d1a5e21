// Server-side apply and managedFields: an apply owns its fields, another manager's different
// value conflicts (409 naming manager and field) unless forced, dropped fields are removed, and a
// plain update (kubectl label) takes ownership of what it changed.

import { describe, expect, it } from "vitest";
import { toStatus } from "./errors.js";
import { istioCrds } from "./istio-crds.js";
import { ObjectService } from "./objects.js";
import { ResourceRegistry } from "./resources.js";
import { startTestApiServer } from "./server.js";
import { ObjectStore } from "./store.js";
import { call } from "./test-client.js";

function setup() {
  const objects = new ObjectService(new ObjectStore(), new ResourceRegistry());
  objects.create(objects.registry.find("", "v1", "namespaces")!, undefined, {
    metadata: { name: "default" },
  });
  const cm = objects.registry.find("", "v1", "configmaps")!;
  const deploy = objects.registry.find("apps", "v1", "deployments")!;
  return { objects, cm, deploy };
}

const config = (data: Record<string, string>, labels?: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "c", ...(labels ? { labels } : {}) },
  data,
});

function statusOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    return toStatus(err);
  }
  throw new Error("expected an error");
}

describe("server-side apply", () => {
  it("creates, records the manager's fields, and conflicts with another manager's value", () => {
    const { objects, cm } = setup();
    const created = objects.patch(cm, "default", "c", "apply", config({ a: "1", b: "2" }), {
      fieldManager: "helm",
    });
    expect(created.metadata.managedFields).toEqual([
      expect.objectContaining({
        manager: "helm",
        operation: "Apply",
        fieldsV1: { "f:data": { "f:a": {}, "f:b": {} } },
      }),
    ]);
    const status = statusOf(() =>
      objects.patch(cm, "default", "c", "apply", config({ a: "9" }), { fieldManager: "other" }),
    );
    expect(status).toMatchObject({ code: 409, reason: "Conflict" });
    expect(status.message).toContain('conflict with "helm": .data.a');
    expect(status.details?.causes).toEqual([
      { reason: "FieldManagerConflict", message: 'conflict with "helm"', field: ".data.a" },
    ]);
    // The same value is shared ownership, not a conflict.
    objects.patch(cm, "default", "c", "apply", config({ a: "1" }), { fieldManager: "other" });
  });

  it("force takes the field over; the previous owner keeps the rest", () => {
    const { objects, cm } = setup();
    objects.patch(cm, "default", "c", "apply", config({ a: "1", b: "2" }), { fieldManager: "helm" });
    const forced = objects.patch(cm, "default", "c", "apply", config({ a: "9" }), {
      fieldManager: "other",
      force: true,
    });
    expect(forced.data).toEqual({ a: "9", b: "2" });
    const owners = Object.fromEntries(
      (forced.metadata.managedFields as any[]).map((m) => [m.manager, m.fieldsV1]),
    );
    expect(owners).toEqual({ helm: { "f:data": { "f:b": {} } }, other: { "f:data": { "f:a": {} } } });
  });

  it("removes fields the manager applied before and no longer applies", () => {
    const { objects, cm } = setup();
    objects.patch(cm, "default", "c", "apply", config({ a: "1", b: "2" }, { l: "x" }), {
      fieldManager: "helm",
    });
    const after = objects.patch(cm, "default", "c", "apply", config({ a: "1" }), { fieldManager: "helm" });
    expect(after.data).toEqual({ a: "1" });
    expect(after.metadata.labels ?? {}).toEqual({});
  });

  it("a merge-patch update (kubectl label) owns what it changed, so a different re-apply conflicts", () => {
    const { objects, cm } = setup();
    objects.patch(cm, "default", "c", "apply", config({ a: "1" }, { tier: "web" }), { fieldManager: "helm" });
    objects.patch(
      cm,
      "default",
      "c",
      "merge",
      { metadata: { labels: { tier: "db" } } },
      { fieldManager: "kubectl-label" },
    );
    const status = statusOf(() =>
      objects.patch(cm, "default", "c", "apply", config({ a: "1" }, { tier: "web" }), {
        fieldManager: "helm",
      }),
    );
    expect(status.message).toContain('conflict with "kubectl-label": .metadata.labels.tier');
  });

  it("merges keyed lists of built-ins by their keys (containers by name)", () => {
    const { objects, deploy } = setup();
    const d = (containers: object[]) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d" },
      spec: { selector: { matchLabels: { a: "b" } }, template: { spec: { containers } } },
    });
    objects.patch(deploy, "default", "d", "apply", d([{ name: "app", image: "app:1" }]), {
      fieldManager: "helm",
    });
    const both = objects.patch(deploy, "default", "d", "apply", d([{ name: "proxy", image: "proxy:1" }]), {
      fieldManager: "injector",
    });
    const names = ((both.spec as any).template.spec.containers as { name: string }[]).map((c) => c.name);
    expect(names).toEqual(["app", "proxy"]);
    const conflict = statusOf(() =>
      objects.patch(deploy, "default", "d", "apply", d([{ name: "app", image: "app:2" }]), {
        fieldManager: "injector",
      }),
    );
    expect(conflict.message).toContain('.spec.template.spec.containers[name="app"].image');
  });

  it("requires a fieldManager", () => {
    const { objects, cm } = setup();
    expect(statusOf(() => objects.patch(cm, "default", "c", "apply", config({ a: "1" }), {}))).toMatchObject({
      code: 422,
    });
  });
});

describe("writes", () => {
  it("409 Conflict on a stale resourceVersion, 409 AlreadyExists, 404 NotFound, no-op keeps the version", () => {
    const { objects, cm } = setup();
    const c = objects.create(cm, "default", config({ a: "1" }));
    expect(statusOf(() => objects.create(cm, "default", config({ a: "1" })))).toMatchObject({
      code: 409,
      reason: "AlreadyExists",
    });
    const updated = objects.replace(cm, "default", "c", { ...c, data: { a: "2" } });
    expect(statusOf(() => objects.replace(cm, "default", "c", { ...c, data: { a: "3" } }))).toMatchObject({
      code: 409,
      reason: "Conflict",
    });
    expect(objects.replace(cm, "default", "c", updated).metadata.resourceVersion).toBe(
      updated.metadata.resourceVersion,
    );
    expect(statusOf(() => objects.get(cm, "default", "nope"))).toMatchObject({
      code: 404,
      reason: "NotFound",
    });
    expect(statusOf(() => objects.create(cm, "missing", config({})))).toMatchObject({
      code: 404,
      message: 'namespaces "missing" not found',
    });
  });

  it("the status subresource changes status (and pod metadata), the main resource does not change status", () => {
    const { objects } = setup();
    const pods = objects.registry.find("", "v1", "pods")!;
    objects.create(pods, "default", {
      metadata: { name: "p" },
      spec: { containers: [{ name: "a" }] },
      status: { phase: "Running" },
    });
    expect(objects.get(pods, "default", "p").status).toMatchObject({ phase: "Pending" });
    const marked = objects.patch(
      pods,
      "default",
      "p",
      "merge",
      {
        metadata: { annotations: { "ambient.istio.io/redirection": "enabled" } },
        status: { phase: "Running" },
        spec: { nodeName: "x" },
      },
      { subresource: "status" },
    );
    expect(marked.metadata.annotations).toEqual({ "ambient.istio.io/redirection": "enabled" });
    expect(marked.status).toMatchObject({ phase: "Running" });
    expect((marked.spec as any).nodeName).toBeUndefined();
    const main = objects.patch(pods, "default", "p", "merge", { status: { phase: "Failed" } });
    expect(main.status).toMatchObject({ phase: "Running" });
  });
});

describe("custom resources", () => {
  it("istioCrds() serves each kind at every version from one stored copy; strategic merge is refused", async () => {
    const server = await startTestApiServer({ objects: istioCrds() });
    try {
      const created = await call(
        server,
        "POST",
        "/apis/security.istio.io/v1/namespaces/default/authorizationpolicies",
        {
          apiVersion: "security.istio.io/v1",
          kind: "AuthorizationPolicy",
          metadata: { name: "deny" },
          spec: { action: "DENY" },
        },
      );
      expect(created.status).toBe(201);
      const old = await call(
        server,
        "GET",
        "/apis/security.istio.io/v1beta1/namespaces/default/authorizationpolicies/deny",
      );
      expect(old.body).toMatchObject({ apiVersion: "security.istio.io/v1beta1", spec: { action: "DENY" } });
      const smp = await call(
        server,
        "PATCH",
        "/apis/security.istio.io/v1/namespaces/default/authorizationpolicies/deny",
        { spec: { action: "ALLOW" } },
        "application/strategic-merge-patch+json",
      );
      expect(smp.body).toMatchObject({ kind: "Status", code: 415 });
      const gw = await call(server, "GET", "/apis/gateway.networking.k8s.io/v1/gatewayclasses");
      expect(gw.body).toMatchObject({ kind: "GatewayClassList", items: [] });
    } finally {
      await server.stop();
    }
  });

  it("ServiceEntry status is a subresource (the control plane writes WaypointBound there); WorkloadEntry is served", async () => {
    const server = await startTestApiServer({ objects: istioCrds() });
    const path = "/apis/networking.istio.io/v1/namespaces/default/serviceentries/ext";
    const bound = { conditions: [{ type: "istio.io/WaypointBound", status: "True" }] };
    try {
      const created = await call(
        server,
        "POST",
        "/apis/networking.istio.io/v1/namespaces/default/serviceentries",
        {
          apiVersion: "networking.istio.io/v1",
          kind: "ServiceEntry",
          metadata: { name: "ext" },
          spec: { hosts: ["api.example.com"], resolution: "DNS" },
          status: bound,
        },
      );
      expect(created.status).toBe(201);
      expect(created.body.status).toBeUndefined();
      const patch = "application/merge-patch+json";
      expect((await call(server, "PATCH", path, { status: bound }, patch)).body.status).toBeUndefined();
      expect((await call(server, "PATCH", `${path}/status`, { status: bound }, patch)).body.status).toEqual(
        bound,
      );
      const we = await call(
        server,
        "POST",
        "/apis/networking.istio.io/v1alpha3/namespaces/default/workloadentries",
        {
          apiVersion: "networking.istio.io/v1alpha3",
          kind: "WorkloadEntry",
          metadata: { name: "vm" },
          spec: { address: "10.0.0.7" },
        },
      );
      expect(we.status).toBe(201);
      const list = await call(server, "GET", "/apis/networking.istio.io/v1/workloadentries");
      expect(list.body).toMatchObject({
        kind: "WorkloadEntryList",
        items: [{ spec: { address: "10.0.0.7" } }],
      });
    } finally {
      await server.stop();
    }
  });

  it("an apply through a custom resource's /status owns what it set, and drops it once no longer applied", () => {
    const objects = new ObjectService(new ObjectStore(), new ResourceRegistry());
    objects.create(objects.registry.find("", "v1", "namespaces")!, undefined, {
      metadata: { name: "default" },
    });
    const crds = objects.registry.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
    for (const crd of istioCrds()) objects.create(crds, undefined, crd as never);
    const se = objects.registry.find("networking.istio.io", "v1", "serviceentries")!;
    const entry = { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "ext" } };
    objects.create(se, "default", { ...entry, spec: { hosts: ["api.example.com"] } });
    const condition = { type: "istio.io/WaypointBound", status: "True" };
    const written = objects.patch(
      se,
      "default",
      "ext",
      "apply",
      { ...entry, status: { conditions: [condition] } },
      {
        fieldManager: "ambient.istio.io/status",
        force: true,
        subresource: "status",
      },
    );
    expect(written.status).toEqual({ conditions: [condition] });
    expect(written.metadata.managedFields).toContainEqual(
      expect.objectContaining({ manager: "ambient.istio.io/status", subresource: "status" }),
    );
    // kubectl label meanwhile: an Update of the main resource, which leaves status to its owner.
    objects.patch(
      se,
      "default",
      "ext",
      "merge",
      { metadata: { labels: { a: "b" } } },
      { fieldManager: "kubectl-label" },
    );
    const dropped = objects.patch(
      se,
      "default",
      "ext",
      "apply",
      { ...entry, status: {} },
      {
        fieldManager: "ambient.istio.io/status",
        force: true,
        subresource: "status",
      },
    );
    expect((dropped.status as { conditions?: unknown } | undefined)?.conditions).toBeUndefined();
    expect(dropped.metadata.labels).toEqual({ a: "b" });
  });
});
