// Watch semantics the informers of our components depend on, over real HTTPS: resume from a
// resourceVersion without synthetic ADDs, 410 after compaction, bookmarks only when asked,
// timeoutSeconds, selectors (entering/leaving), unknown field selectors refused with 400.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startTestApiServer, type TestApiServer } from "./server.js";
import { call, watch } from "./test-client.js";

const pod = (name: string, nodeName: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: name } },
  spec: { nodeName, containers: [{ name: "app", image: "app" }] },
});

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("watch", () => {
  let server: TestApiServer;
  beforeEach(async () => {
    server = await startTestApiServer({ bookmarkIntervalMs: 50 });
  });
  afterEach(async () => {
    await server.stop();
  });

  it("from a list's resourceVersion streams only later changes, no synthetic ADDs", async () => {
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    const list = await call(server, "GET", "/api/v1/namespaces/default/pods");
    const rv = list.body.metadata.resourceVersion;
    expect(list.body.items.map((p: any) => p.metadata.name)).toEqual(["a"]);
    const w = await watch(server, `/api/v1/namespaces/default/pods?watch=1&resourceVersion=${rv}`);
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("b", "n1"));
    await call(
      server,
      "PATCH",
      "/api/v1/namespaces/default/pods/a",
      { metadata: { labels: { x: "y" } } },
      "application/merge-patch+json",
    );
    // No kubelet finishes a graceful deletion here: delete at once.
    await call(server, "DELETE", "/api/v1/namespaces/default/pods/b?gracePeriodSeconds=0");
    await until(() => w.events.length >= 3, "three events");
    w.close();
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      "ADDED b",
      "MODIFIED a",
      "DELETED b",
    ]);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs.every((v, i) => v > Number(rv) && (i === 0 || v > rvs[i - 1]!))).toBe(true);
  });

  it("without a resourceVersion starts with ADDED for what exists, then live events", async () => {
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    const w = await watch(server, "/api/v1/namespaces/default/pods?watch=true");
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("b", "n1"));
    await until(() => w.events.length >= 2, "two events");
    w.close();
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED a", "ADDED b"]);
  });

  it("a compacted resourceVersion ends the watch with an ERROR event carrying 410 Expired", async () => {
    const before = (await call(server, "GET", "/api/v1/pods")).body.metadata.resourceVersion;
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    server.store.compact();
    const w = await watch(server, `/api/v1/pods?watch=1&resourceVersion=${before}`);
    await w.ended;
    expect(w.events).toHaveLength(1);
    expect(w.events[0]!.type).toBe("ERROR");
    expect(w.events[0]!.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
  });

  it("open watches get ERROR 410 when the test expires them", async () => {
    const w = await watch(server, "/api/v1/pods?watch=1&resourceVersion=1");
    server.faults.expireWatches();
    await w.ended;
    expect(w.events.at(-1)).toMatchObject({ type: "ERROR", object: { code: 410, reason: "Expired" } });
  });

  it("sends BOOKMARKs only with allowWatchBookmarks=true", async () => {
    const rv = (await call(server, "GET", "/api/v1/pods")).body.metadata.resourceVersion;
    const plain = await watch(server, `/api/v1/pods?watch=1&resourceVersion=${rv}`);
    const marked = await watch(server, `/api/v1/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
    await until(() => marked.events.filter((e) => e.type === "BOOKMARK").length >= 2, "two bookmarks");
    // The plain watch shares the server and its bookmark timer period: it had the same chance.
    plain.close();
    marked.close();
    expect(plain.events).toEqual([]);
    expect(marked.events[0]).toMatchObject({ type: "BOOKMARK", object: { kind: "Pod", apiVersion: "v1" } });
    expect(Number(marked.events[0]!.object.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(rv));
  });

  it("ends the stream after timeoutSeconds", async () => {
    const w = await watch(server, "/api/v1/pods?watch=1&timeoutSeconds=1");
    await w.ended;
    expect(w.events).toEqual([]);
  });

  it("field selectors filter, and an object leaving the selection is DELETED for that watch", async () => {
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("b", "n2"));
    const w = await watch(
      server,
      "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dn1,status.phase!%3DFailed",
    );
    await until(() => w.events.length >= 1, "initial ADDED");
    await call(
      server,
      "PATCH",
      "/api/v1/namespaces/default/pods/a/status",
      { status: { phase: "Failed" } },
      "application/merge-patch+json",
    );
    await until(() => w.events.length >= 2, "DELETED on leaving");
    w.close();
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED a", "DELETED a"]);

    const list = await call(server, "GET", "/api/v1/pods?fieldSelector=metadata.name%3Db");
    expect(list.body.items.map((p: any) => p.metadata.name)).toEqual(["b"]);
    const labelled = await call(server, "GET", "/api/v1/pods?labelSelector=app%20in%20(a,c)");
    expect(labelled.body.items.map((p: any) => p.metadata.name)).toEqual(["a"]);
  });

  it("refuses an unknown field selector with 400 naming the field, for lists and watches", async () => {
    for (const path of [
      "/api/v1/pods?fieldSelector=spec.bogus%3Dx",
      "/api/v1/pods?watch=1&fieldSelector=spec.bogus%3Dx",
    ]) {
      const answer = await call(server, "GET", path);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ kind: "Status", code: 400, reason: "BadRequest" });
      expect(answer.body.message).toContain("field label not supported: spec.bogus");
    }
  });

  it("a stalled watch stays open and silent; restart() drops it and keeps the resourceVersions", async () => {
    const w = await watch(server, "/api/v1/pods?watch=1&resourceVersion=1&allowWatchBookmarks=true");
    server.faults.stallWatches();
    const sent = w.events.length;
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    const rv = Number((await call(server, "GET", "/api/v1/pods")).body.metadata.resourceVersion);
    expect(w.events.length).toBe(sent);
    server.faults.clear();
    await server.restart(0);
    await w.ended;
    const after = await call(server, "GET", "/api/v1/pods");
    expect(Number(after.body.metadata.resourceVersion)).toBe(rv);
    expect(after.body.items.map((p: any) => p.metadata.name)).toEqual(["a"]);
  });

  it("a stalled watch stays silent after the fault ends (a dropped connection); a new one sees what it missed", async () => {
    const first = await call(server, "GET", "/api/v1/pods");
    const rv = first.body.metadata.resourceVersion;
    const stalled = await watch(
      server,
      `/api/v1/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`,
    );
    server.faults.stallWatches();
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("missed", "n1"));
    server.faults.resumeWatches();
    const fresh = await watch(server, `/api/v1/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
    await until(() => fresh.events.some((e) => e.type === "BOOKMARK"), "a bookmark on the new watch");
    expect(fresh.events.filter((e) => e.type === "ADDED").map((e) => e.object.metadata.name)).toEqual([
      "missed",
    ]);
    // Bookmarks every 50 ms: the stalled watch would have sent several by now.
    expect(stalled.events).toEqual([]);
    stalled.close();
    fresh.close();
  });

  it("restart(downtime) refuses connections while down, then serves the same data", async () => {
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    // restart() closes the listener before it first yields; the downtime is ended by the test.
    const restarted = server.restart(60_000);
    let refused: unknown;
    const deadline = Date.now() + 5000;
    while (refused === undefined && Date.now() < deadline) {
      try {
        await call(server, "GET", "/api/v1/pods");
      } catch (err) {
        refused = err;
      }
    }
    expect((refused as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    server.endDowntime();
    await restarted;
    expect((await call(server, "GET", "/api/v1/pods")).body.items.map((p: any) => p.metadata.name)).toEqual([
      "a",
    ]);
  });

  it("sendInitialEvents=true: ADDED for what exists, then a BOOKMARK marking the end of them", async () => {
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a", "n1"));
    const w = await watch(
      server,
      "/api/v1/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    );
    await until(() => w.events.length >= 2, "ADDED and the bookmark");
    w.close();
    expect(w.events[0]).toMatchObject({ type: "ADDED", object: { metadata: { name: "a" } } });
    expect(w.events[1]).toMatchObject({
      type: "BOOKMARK",
      object: { metadata: { annotations: { "k8s.io/initial-events-end": "true" } } },
    });
  });

  it("faults match by kind of request: a watch-only 500 leaves lists alone", async () => {
    server.faults.failNext(1, 500, { watch: true });
    expect((await call(server, "GET", "/api/v1/pods")).status).toBe(200);
    const failed = await call(server, "GET", "/api/v1/pods?watch=1");
    expect(failed.body).toMatchObject({ kind: "Status", code: 500, reason: "InternalError" });
    server.faults.delayNext(1, 1, { method: "GET" });
    expect((await call(server, "GET", "/api/v1/pods")).status).toBe(200);
  });

  it("injected 5xx answers are Status objects and then stop", async () => {
    server.faults.failNext(1, 503, { path: "/pods" });
    const failed = await call(server, "GET", "/api/v1/pods");
    expect(failed.status).toBe(503);
    expect(failed.body).toMatchObject({ kind: "Status", code: 503, reason: "ServiceUnavailable" });
    expect((await call(server, "GET", "/api/v1/pods")).status).toBe(200);
  });
});
