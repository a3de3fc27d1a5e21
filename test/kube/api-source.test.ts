// KubeApiSource against the test API server: the objects in force follow the API through lists,
// watches, 410 relists, silent watch stalls, an API server restart, a CRD installed late and an
// invalid object (whose last good version stays), and every change arrives once.

import { validateObject } from "@ambient/controlplane";
import { createMemoryLogger } from "@ambient/core";
import { type KubeObject, objectKey } from "@ambient/kube";
import { KubeApiSource, loadKubeConfig } from "@ambient/kube/api";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../utils/index.js";

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});
const pod = (name: string, labels: Record<string, string> = {}, podIP = "10.0.0.5") => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "demo", labels },
  spec: { nodeName: "node-a", containers: [{ name: "app", image: "app" }] },
  status: { podIP, phase: "Running" },
});
const policy = (name: string, action = "DENY") => ({
  apiVersion: "security.istio.io/v1",
  kind: "AuthorizationPolicy",
  metadata: { name, namespace: "demo" },
  spec: { action, rules: [{}] },
});

let server: TestApiServer | undefined;
let source: KubeApiSource | undefined;
afterEach(async () => {
  await source?.stop();
  await server?.stop();
  source = undefined;
  server = undefined;
});

async function start(objects: unknown[], opts: { watchdogMs?: number } = {}) {
  server = await startTestApiServer({ objects: objects as never });
  const { logger, records } = createMemoryLogger("debug");
  const src = new KubeApiSource(loadKubeConfig(server.kubeconfigPath), {
    logger,
    // The control plane's own validator, as it passes it.
    validate: validateObject,
    batchMs: 10,
    reflector: { watchdogMs: opts.watchdogMs ?? 60_000, backoff: { initialMs: 50, maxMs: 200 } },
  });
  source = src;
  let changes = 0;
  src.onChange(() => {
    changes++;
  });
  await src.start();
  const keys = () => src.objects().map(objectKey);
  const find = (key: string) => src.objects().find((o) => objectKey(o) === key);
  return { src, logs: records, keys, find, changes: () => changes, api: server };
}

/** Writes as a client would, through the server's own API rules. */
function write(
  s: TestApiServer,
  verb: "create" | "replace" | "delete",
  obj: ReturnType<typeof pod> | object,
) {
  const o = obj as KubeObject;
  const type = s.registry.byKind(o.apiVersion, o.kind)!;
  const namespace = o.metadata.namespace;
  if (verb === "create") return s.objects.create(type, namespace, o as never);
  if (verb === "replace") {
    const current = s.objects.get(type, namespace, o.metadata.name);
    return s.objects.replace(type, namespace, o.metadata.name, {
      ...o,
      metadata: { ...o.metadata, resourceVersion: current.metadata.resourceVersion },
    } as never);
  }
  // No kubelet finishes a graceful deletion here: grace 0 removes a pod at once.
  return s.objects.delete(type, namespace, o.metadata.name, {}, 0);
}

const actionOf = (o: KubeObject | undefined) => (o?.spec as { action?: string } | undefined)?.action;

describe("KubeApiSource", () => {
  it("lists what is there, then follows adds, edits and deletes", async () => {
    const t = await start([...istioCrds(), ns("demo"), pod("web")]);
    expect(t.keys()).toEqual(expect.arrayContaining(["core/Namespace//demo", "core/Pod/demo/web"]));
    write(t.api, "create", policy("deny-all"));
    write(t.api, "replace", pod("web", { app: "web" }));
    await eventually(() => {
      expect(t.find("security.istio.io/AuthorizationPolicy/demo/deny-all")).toBeDefined();
      expect(t.find("core/Pod/demo/web")?.metadata.labels).toEqual({ app: "web" });
    });
    write(t.api, "delete", policy("deny-all"));
    await eventually(() =>
      expect(t.find("security.istio.io/AuthorizationPolicy/demo/deny-all")).toBeUndefined(),
    );
  });

  it("keeps objects() in key order through adds, edits and deletes, and never moves an array it returned", async () => {
    const t = await start([...istioCrds(), ns("demo"), pod("p-05"), pod("p-10"), policy("m")]);
    const first = t.src.objects();
    const firstKeys = first.map(objectKey);
    // Before, between and after existing keys, across kinds; an edit in place; deletes at both ends.
    for (const name of ["p-00", "p-07", "p-99"]) write(t.api, "create", pod(name));
    write(t.api, "create", policy("a"));
    write(t.api, "create", policy("z"));
    write(t.api, "replace", pod("p-10", { app: "edited" }));
    write(t.api, "delete", pod("p-05"));
    write(t.api, "delete", policy("m"));
    const expected = [
      ...["p-00", "p-07", "p-10", "p-99"].map((n) => `core/Pod/demo/${n}`),
      ...["a", "z"].map((n) => `security.istio.io/AuthorizationPolicy/demo/${n}`),
    ];
    const sorted = (keys: string[]) => [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    await eventually(() => {
      const keys = t.keys();
      expect(keys).toEqual(sorted(keys));
      // The server's own objects (default namespaces, service accounts) are there too.
      expect(keys.filter((k) => /^(core\/Pod|security\.istio\.io\/AuthorizationPolicy)\//.test(k))).toEqual(
        expected,
      );
      expect(t.find("core/Pod/demo/p-10")?.metadata.labels).toEqual({ app: "edited" });
    });
    expect(first.map(objectKey)).toEqual(firstKeys);
    // Unchanged between calls: the same array (the control plane copies it once per publish).
    expect(t.src.objects()).toBe(t.src.objects());
  });

  it("relists after a 410 and misses nothing that changed meanwhile", async () => {
    const t = await start([...istioCrds(), ns("demo"), pod("a"), pod("b")]);
    const lists = () =>
      t.api.requests.filter((r) => r.path === "/api/v1/pods" && !r.query.includes("watch")).length;
    const before = lists();
    write(t.api, "delete", pod("a"));
    write(t.api, "create", pod("c"));
    t.api.store.compact();
    t.api.faults.expireWatches();
    await eventually(() => {
      expect(lists()).toBeGreaterThan(before);
      expect(t.find("core/Pod/demo/a")).toBeUndefined();
      expect(t.find("core/Pod/demo/c")).toBeDefined();
      expect(t.find("core/Pod/demo/b")).toBeDefined();
    });
  });

  it("drops a watch that went silent (the watchdog) and resumes from the last version", async () => {
    const t = await start([...istioCrds(), ns("demo"), pod("a")], { watchdogMs: 500 });
    t.api.faults.stallWatches();
    write(t.api, "create", pod("during-stall"));
    const watches = () =>
      t.api.requests.filter((r) => r.path === "/api/v1/pods" && r.query.includes("watch")).length;
    const before = watches();
    await eventually(() => expect(watches()).toBeGreaterThan(before));
    t.api.faults.resumeWatches();
    await eventually(() => expect(t.find("core/Pod/demo/during-stall")).toBeDefined());
  });

  it("keeps serving the last state while the API server is down, then resyncs, saying so once each way", async () => {
    const t = await start([...istioCrds(), ns("demo"), pod("a")]);
    const restarted = t.api.restart(60_000);
    await eventually(() =>
      expect(t.logs.some((l) => /lost the Kubernetes API server/.test(String(l.msg)))).toBe(true),
    );
    expect(t.find("core/Pod/demo/a")).toBeDefined();
    t.api.endDowntime();
    await restarted;
    write(t.api, "create", pod("after-restart"));
    await eventually(() => expect(t.find("core/Pod/demo/after-restart")).toBeDefined());
    await eventually(() => expect(t.logs.filter((l) => /answers again/.test(String(l.msg)))).toHaveLength(1));
    expect(t.logs.filter((l) => /lost the Kubernetes API server/.test(String(l.msg)))).toHaveLength(1);
  });

  it("picks up a kind whose CRD is installed later", async () => {
    const t = await start([ns("demo")]);
    expect(t.find("security.istio.io/AuthorizationPolicy/demo/late")).toBeUndefined();
    for (const crd of istioCrds()) write(t.api, "create", crd);
    write(t.api, "create", policy("late"));
    await eventually(
      () => expect(t.find("security.istio.io/AuthorizationPolicy/demo/late")).toBeDefined(),
      10_000,
    );
  });

  it("reports an invalid object once and keeps its last good version in force", async () => {
    const t = await start([...istioCrds(), ns("demo"), policy("p", "DENY")]);
    write(t.api, "replace", policy("p", "MAYBE"));
    await eventually(() =>
      expect(t.src.problems().map((p) => p.source.file)).toEqual(["AuthorizationPolicy/demo/p"]),
    );
    expect(actionOf(t.find("security.istio.io/AuthorizationPolicy/demo/p"))).toBe("DENY");
    write(t.api, "replace", policy("p", "ALLOW"));
    await eventually(() =>
      expect(actionOf(t.find("security.istio.io/AuthorizationPolicy/demo/p"))).toBe("ALLOW"),
    );
    expect(t.src.problems()).toEqual([]);
  });
});

describe("KubeApiSource start", () => {
  it("tells its listeners nothing until every kind is listed, then once, with all of it", async () => {
    server = await startTestApiServer({
      objects: [...istioCrds(), ns("demo"), pod("web"), policy("deny-all")] as never,
    });
    // The policies' list answers last, well after the other kinds' lists and the 10 ms batch.
    server.faults.delayNext(1, 400, { path: "authorizationpolicies", method: "GET", watch: false });
    const { logger } = createMemoryLogger("debug");
    const src = new KubeApiSource(loadKubeConfig(server.kubeconfigPath), {
      logger,
      validate: validateObject,
      batchMs: 10,
      reflector: { watchdogMs: 60_000, backoff: { initialMs: 50, maxMs: 200 } },
    });
    source = src;
    let started = false;
    const seen: { started: boolean; keys: string[] }[] = [];
    src.onChange(() => seen.push({ started, keys: src.objects().map(objectKey) }));
    await src.start();
    started = true;
    // Told once, as start() resolved, with the pod and its policy together.
    expect(seen).toHaveLength(1);
    expect(seen[0]!.keys).toEqual(
      expect.arrayContaining(["core/Pod/demo/web", "security.istio.io/AuthorizationPolicy/demo/deny-all"]),
    );
    // Later changes are reported as before.
    write(server, "replace", pod("web", { app: "web" }));
    await eventually(() => expect(seen.length).toBeGreaterThan(1));
    expect(seen.at(-1)!.started).toBe(true);
  });
});
