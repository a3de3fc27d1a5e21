import { once } from "node:events";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  createLogger,
  type DeltaAdsClient,
  encodeAddress,
  encodeAuthorization,
  type NackEvent,
  ResourceStore,
  type XdsNackInfo,
} from "@ambient/core";
import { type RunningAdsServer, startAdsServer } from "@ambient/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { ProxyState } from "../state/proxy-state.js";
import { ip, testPolicy, testService, testWorkload } from "../state/testing.js";
import { startXdsClient, whenSynced, ztunnelNode } from "./xds-client.js";

const logger = createLogger({ level: "silent" });
const sleep = testWorkload({ name: "sleep", namespace: "demo", ips: ["10.0.1.1"], node: "node-1" });
const echo = testService({ name: "echo", namespace: "demo", vips: ["10.96.0.1"], ports: [80] });
const echoKey = "demo/echo.demo.svc.cluster.local";
const allow = testPolicy({ name: "allow", namespace: "demo", scope: "NAMESPACE" });

let servers: RunningAdsServer[] = [];
let clients: DeltaAdsClient[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
  clients = [];
  servers = [];
});

async function serve(store: ResourceStore, nacks: NackEvent[] = []) {
  const server = await startAdsServer({ store, logger, hooks: { onNack: (e) => nacks.push(e) } });
  servers.push(server);
  return server;
}

function connect(address: string, state: ProxyState, token?: () => string) {
  const client = startXdsClient({
    address,
    nodeName: "node-1",
    nodeIp: "127.10.1.1",
    clusterId: "Kubernetes",
    state,
    logger,
    backoff: { initialMs: 20, maxMs: 100 },
    ...(token ? { token } : {}),
  });
  clients.push(client);
  return client;
}

function seed(): ResourceStore {
  const store = new ResourceStore();
  store.applyBatch(ADDRESS_TYPE_URL, {
    upserts: [
      [sleep.uid, encodeAddress({ workload: sleep })],
      [echoKey, encodeAddress({ service: echo })],
    ],
  });
  store.applyBatch(AUTHORIZATION_TYPE_URL, { upserts: [["demo/allow", encodeAuthorization(allow)]] });
  return store;
}

async function nextNack(client: DeltaAdsClient): Promise<XdsNackInfo> {
  const [info] = await once(client, "nack");
  return info as XdsNackInfo;
}

describe("startXdsClient", () => {
  it("syncs Addresses and Authorizations into ProxyState with Istio's ztunnel node id", async () => {
    const server = await serve(seed());
    const state = new ProxyState();
    const client = connect(server.address, state);
    await whenSynced(client);
    expect(client.synced).toBe(true);
    expect(state.workloadByIp("10.0.1.1")?.uid).toBe(sleep.uid);
    expect(state.serviceByVip("10.96.0.1")?.hostname).toBe(echo.hostname);
    expect(state.policiesFor(sleep).map((p) => p.name)).toEqual(["allow"]);
    expect(server.ads.clients()).toMatchObject([
      {
        node: {
          id: "ztunnel~127.10.1.1~node-1.istio-system~istio-system.svc.cluster.local",
          metadata: { NODE_NAME: "node-1", INSTANCE_IPS: "127.10.1.1", CLUSTER_ID: "Kubernetes" },
        },
      },
    ]);
    await whenSynced(client); // already synced: resolves at once
  });

  it("follows edits and removals", async () => {
    const store = seed();
    const server = await serve(store);
    const state = new ProxyState();
    const client = connect(server.address, state);
    await whenSynced(client);
    const changed = new Promise((resolve) => state.onChange(resolve));
    store.applyBatch(ADDRESS_TYPE_URL, {
      upserts: [[sleep.uid, encodeAddress({ workload: { ...sleep, addresses: [ip("10.0.1.9")] } })]],
      removes: [echoKey],
    });
    await changed;
    expect(state.workloadByIp("10.0.1.1")).toBeUndefined();
    expect(state.workloadByIp("10.0.1.9")?.uid).toBe(sleep.uid);
    expect(state.serviceByKey(echoKey)).toBeUndefined();
  });

  it("NACKs undecodable bytes naming the resource, and keeps the previous state", async () => {
    const store = seed();
    const nacks: NackEvent[] = [];
    const server = await serve(store, nacks);
    const state = new ProxyState();
    const client = connect(server.address, state);
    await whenSynced(client);
    const nack = nextNack(client);
    store.applyBatch(ADDRESS_TYPE_URL, {
      upserts: [
        // A good edit in the same response must not be applied either: responses apply whole.
        [sleep.uid, encodeAddress({ workload: { ...sleep, addresses: [ip("10.0.1.9")] } })],
        ["demo/garbage", Uint8Array.from([0xff, 0xff, 0xff, 0xff])],
      ],
    });
    expect((await nack).message).toMatch(/resource "demo\/garbage": cannot decode istio.workload.Address/);
    expect(state.workloadByIp("10.0.1.1")?.uid).toBe(sleep.uid);
    expect(state.workloadByIp("10.0.1.9")).toBeUndefined();
    await expect.poll(() => nacks.length).toBe(1);
    expect(nacks[0]?.message).toMatch(/demo\/garbage/);
  });

  it("NACKs a decodable but invalid workload, listing every bad field", async () => {
    const store = seed();
    const server = await serve(store);
    const state = new ProxyState();
    const client = connect(server.address, state);
    await whenSynced(client);
    const nack = nextNack(client);
    const bad = { ...sleep, addresses: [ip("10.0.1.1"), Uint8Array.from([10, 0, 0, 1, 5])], node: "node-9" };
    store.applyBatch(ADDRESS_TYPE_URL, {
      upserts: [["Kubernetes//Pod/demo/other", encodeAddress({ workload: bad })]],
    });
    const { message } = await nack;
    expect(message).toContain('resource "Kubernetes//Pod/demo/other": invalid istio.workload.Workload');
    expect(message).toContain(`uid is "${sleep.uid}", not the resource name`);
    expect(message).toContain("addresses[1] is 5 bytes; expected 4 (IPv4) or 16 (IPv6)");
    expect(state.workloadByUid(sleep.uid)?.node).toBe("node-1");
  });

  it("NACKs an Authorization with a scope this build does not know", async () => {
    const store = seed();
    const server = await serve(store);
    const state = new ProxyState();
    const client = connect(server.address, state);
    await whenSynced(client);
    const nack = nextNack(client);
    // name "p" (1), namespace "demo" (2), scope 7 (3): hand-written, as no encoder writes it.
    const raw = Uint8Array.from([0x0a, 1, 0x70, 0x12, 4, 0x64, 0x65, 0x6d, 0x6f, 0x18, 7]);
    store.applyBatch(AUTHORIZATION_TYPE_URL, { upserts: [["demo/p", raw]] });
    expect((await nack).message).toMatch(/resource "demo\/p".*scope.*7/);
    expect(state.policyByKey("demo/p")).toBeUndefined();
    expect(state.policyByKey("demo/allow")).toBeDefined();
  });

  it("keeps the last good state while the control plane is down, and resyncs after", async () => {
    const store = seed();
    const server = await serve(store);
    const port = server.port;
    const state = new ProxyState();
    const client = connect(server.address, state, () => "node-token");
    await whenSynced(client);
    const down = once(client, "disconnected");
    await server.stop();
    servers = [];
    await down;
    expect(state.workloadByUid(sleep.uid)).toBeDefined();
    expect(state.serviceByKey(echoKey)).toBeDefined();

    // The control plane comes back with the service gone: the client learns the removal.
    store.applyBatch(ADDRESS_TYPE_URL, { removes: [echoKey] });
    const again = await startAdsServer({ store, logger, port });
    servers.push(again);
    await expect.poll(() => state.serviceByKey(echoKey), { timeout: 5_000 }).toBeUndefined();
    expect(state.workloadByUid(sleep.uid)).toBeDefined();
  });

  it("builds Istio's node id from the pod name and namespace when given", () => {
    expect(
      ztunnelNode({
        nodeName: "n",
        nodeIp: "10.0.0.1",
        clusterId: "c",
        podName: "ztunnel-x",
        podNamespace: "kube",
      }).id,
    ).toBe("ztunnel~10.0.0.1~ztunnel-x.kube~kube.svc.cluster.local");
  });

  it("whenSynced rejects when its signal aborts", async () => {
    const state = new ProxyState();
    const client = connect("127.0.0.1:1", state);
    const controller = new AbortController();
    const waiting = whenSynced(client, controller.signal);
    controller.abort(new Error("gave up"));
    await expect(waiting).rejects.toThrow("gave up");
  });
});
