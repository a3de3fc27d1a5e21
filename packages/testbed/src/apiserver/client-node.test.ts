// @kubernetes/client-node 2.x, as our components will use it, against the server: an informer
// lists, watches from the list's resourceVersion, and after an ERROR 410 relists and goes on.

import { CoreV1Api, KubeConfig, ListWatch, type V1Pod, Watch } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startTestApiServer, type TestApiServer } from "./server.js";
import { call } from "./test-client.js";

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pod = (name: string) => ({
  metadata: { name },
  spec: { nodeName: "n1", containers: [{ name: "c", image: "c" }] },
});

describe("@kubernetes/client-node informer", () => {
  let server: TestApiServer;
  beforeEach(async () => {
    server = await startTestApiServer();
  });
  afterEach(async () => {
    await server.stop();
  });

  it("lists, watches, relists after 410 Expired and keeps following changes", async () => {
    await call(server, "POST", "/api/v1/namespaces/default/pods", pod("a"));
    const kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfigPath);
    const api = kc.makeApiClient(CoreV1Api);
    // ListWatch, as makeInformer builds it, with the field selector the CNI agent uses.
    const informer = new ListWatch<V1Pod>(
      "/api/v1/pods",
      new Watch(kc),
      () => api.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=n1" }),
      false,
      undefined,
      "spec.nodeName=n1",
    );
    const seen: string[] = [];
    informer.on("add", (p: V1Pod) => seen.push(`add ${p.metadata?.name}`));
    informer.on("update", (p: V1Pod) => seen.push(`update ${p.metadata?.name}`));
    informer.on("delete", (p: V1Pod) => seen.push(`delete ${p.metadata?.name}`));
    const errors: unknown[] = [];
    informer.on("error", (e) => errors.push(e));
    await informer.start();
    try {
      await until(() => seen.includes("add a"), "the listed pod");
      await until(() => server.requests.some((r) => r.query.includes("watch=true")), "the watch");
      await call(server, "POST", "/api/v1/namespaces/default/pods", pod("b"));
      await until(() => seen.includes("add b"), "a watched add");

      const lists = () =>
        server.requests.filter((r) => r.path === "/api/v1/pods" && !r.query.includes("watch")).length;
      const listsBefore = lists();
      server.faults.expireWatches();
      await until(() => lists() > listsBefore, "a relist after 410");
      // No kubelet runs here to finish a graceful deletion: delete at once, as `--grace-period=0 --force`.
      await call(server, "DELETE", "/api/v1/namespaces/default/pods/a?gracePeriodSeconds=0");
      await until(() => seen.includes("delete a"), "a delete after the relist");
      expect(errors).toEqual([]);
      expect(informer.list().map((p) => p.metadata?.name)).toEqual(["b"]);
    } finally {
      await informer.stop();
    }
  });
});
