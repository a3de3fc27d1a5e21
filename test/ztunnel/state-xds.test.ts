// ztunnel's xDS client against a real control plane on a watched folder: the state syncs, an edit
// of the folder arrives, per-pod named target ports resolve, and the last good state survives the
// control plane going away.

import { once } from "node:events";
import { createLogger, type DeltaAdsClient } from "@ambient/core";
import { ProxyState, startXdsClient, whenSynced, workloadIdentity } from "@ambient/dataplane";
import { afterEach, describe, expect, it } from "vitest";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  service,
  startControlPlane,
} from "../utils/index.js";

const logger = createLogger({ level: "silent" });
const HOST = "echo.demo.svc.cluster.local";

const MESH = {
  "00-cluster.yaml": docs(
    namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
    node("node-1", "127.10.1.1"),
    node("node-2", "127.10.2.1"),
  ),
  "10-pods.yaml": docs(
    pod({
      name: "echo-a",
      namespace: "demo",
      node: "node-1",
      ip: "127.10.1.10",
      sa: "echo",
      labels: { app: "echo" },
      ports: [{ name: "http", containerPort: 8080 }],
    }),
    // Serves the service too, but has no container port named "http".
    pod({
      name: "echo-b",
      namespace: "demo",
      node: "node-2",
      ip: "127.10.2.10",
      sa: "echo",
      labels: { app: "echo" },
    }),
    pod({
      name: "sleep",
      namespace: "demo",
      node: "node-1",
      ip: "127.10.1.11",
      sa: "sleep",
      labels: { app: "sleep" },
    }),
  ),
  "20-svc.yaml": service({
    name: "echo",
    namespace: "demo",
    vip: "127.10.100.1",
    selector: { app: "echo" },
    ports: [
      { name: "http", port: 80, targetPort: "http" },
      { name: "tcp", port: 9000, targetPort: 9000 },
    ],
  }),
  "30-policy.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-from-sleep, namespace: demo }
spec:
  selector: { matchLabels: { app: echo } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/sleep"] } }]
`,
};

describe("ztunnel xDS against the control plane", () => {
  let env: RunningControlPlane | undefined;
  let client: DeltaAdsClient | undefined;
  afterEach(async () => {
    client?.close();
    client = undefined;
    await env?.stop();
    env = undefined;
  });

  async function start(state: ProxyState) {
    env = await startControlPlane(MESH);
    client = startXdsClient({
      address: env.cp.address,
      nodeName: "node-1",
      nodeIp: "127.10.1.1",
      clusterId: "Kubernetes",
      state,
      logger,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    await whenSynced(client);
    return client;
  }

  it("syncs workloads, services and policies, with the lookups the proxy makes", async () => {
    const state = new ProxyState();
    await start(state);
    const echoA = state.workloadByIp("127.10.1.10")!;
    expect(echoA.uid).toBe("Kubernetes//Pod/demo/echo-a");
    expect(workloadIdentity(echoA).toString()).toBe("spiffe://cluster.local/ns/demo/sa/echo");
    expect(state.localWorkloads("node-1").map((w) => w.name)).toEqual(["echo-a", "sleep"]);

    const echo = state.serviceByVip("127.10.100.1")!;
    expect(state.serviceByHostname(HOST)).toBe(echo);
    // Port 80 targets the container port named "http": only echo-a has one.
    expect(state.endpointsFor(echo, 80).map((e) => [e.workload.name, e.targetPort])).toEqual([
      ["echo-a", 8080],
    ]);
    expect(state.endpointsFor(echo, 9000).map((e) => [e.workload.name, e.targetPort])).toEqual([
      ["echo-a", 9000],
      ["echo-b", 9000],
    ]);
    expect(state.pickEndpoint(echo, 80)?.workload.name).toBe("echo-a");

    expect(state.policiesFor(echoA).map((p) => `${p.namespace}/${p.name}`)).toEqual(["demo/echo-from-sleep"]);
    expect(state.policiesFor(state.workloadByIp("127.10.1.11")!)).toEqual([]);
    expect(env!.cp.clients()).toMatchObject([
      { node: { id: "ztunnel~127.10.1.1~node-1.istio-system~istio-system.svc.cluster.local" } },
    ]);
  });

  it("applies an edit of the folder and reports what changed", async () => {
    const state = new ProxyState();
    await start(state);
    const changes: { workloads: boolean; policies: boolean; removedWorkloads: string[] }[] = [];
    state.onChange((c) => changes.push(c));
    await env!.config.remove("30-policy.yaml");
    await env!.config.write(
      "10-pods.yaml",
      docs(
        pod({
          name: "echo-a",
          namespace: "demo",
          node: "node-1",
          ip: "127.10.1.10",
          sa: "echo",
          labels: { app: "echo" },
        }),
        pod({
          name: "sleep",
          namespace: "demo",
          node: "node-1",
          ip: "127.10.1.11",
          sa: "sleep",
          labels: { app: "sleep" },
        }),
      ),
    );
    await eventually(() => {
      expect(state.workloadByUid("Kubernetes//Pod/demo/echo-b")).toBeUndefined();
      expect(state.policyByKey("demo/echo-from-sleep")).toBeUndefined();
    });
    expect(changes.some((c) => c.removedWorkloads.includes("Kubernetes//Pod/demo/echo-b"))).toBe(true);
    expect(changes.some((c) => c.policies)).toBe(true);
    expect(state.policiesFor(state.workloadByIp("127.10.1.10")!)).toEqual([]);
  });

  it("keeps the last good state when the control plane stops", async () => {
    const state = new ProxyState();
    const c = await start(state);
    const before = state.snapshot();
    const down = once(c, "disconnected");
    await env!.stop();
    env = undefined;
    await down;
    expect(state.snapshot()).toEqual(before);
    expect(state.serviceByHostname(HOST)).toBeDefined();
  });
});
