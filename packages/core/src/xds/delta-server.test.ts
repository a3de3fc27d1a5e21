import { Server, ServerCredentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../telemetry/logging.js";
import {
  type AckEvent,
  DeltaAdsServer,
  type NackEvent,
  type ResourceVisibility,
  type XdsClientInfo,
} from "./delta-server.js";
import { protos } from "./proto.js";
import { ResourceStore, resourceVersion } from "./resource-store.js";
import { RawDeltaStream, type RunningAdsServer, startAdsServer } from "./testing.js";
import type { DeltaDiscoveryResponse } from "./wire.js";

const T = "type.googleapis.com/istio.workload.Address";
const OTHER = "type.googleapis.com/istio.security.Authorization";
const bytes = (s: string) => new TextEncoder().encode(s);
const names = (r: DeltaDiscoveryResponse) => r.resources.map((x) => x.name).sort();
const node = { id: "ztunnel~10.0.0.1~ztunnel-abc.istio-system", cluster: "Kubernetes", metadata: null };

let server: RunningAdsServer | undefined;
let streams: RawDeltaStream[] = [];

afterEach(async () => {
  for (const s of streams) s.close();
  streams = [];
  await server?.stop();
  server = undefined;
});

async function setup(seed: Record<string, string> = {}) {
  const store = new ResourceStore();
  store.applyBatch(T, { upserts: Object.entries(seed).map(([k, v]) => [k, bytes(v)] as const) });
  const events = {
    opened: [] as XdsClientInfo[],
    closed: [] as XdsClientInfo[],
    acks: [] as AckEvent[],
    nacks: [] as NackEvent[],
  };
  const { logger, records } = createMemoryLogger("debug");
  server = await startAdsServer({
    store,
    logger,
    hooks: {
      onStreamOpen: (c) => events.opened.push(c),
      onStreamClose: (c) => events.closed.push(c),
      onAck: (e) => events.acks.push(e),
      onNack: (e) => events.nacks.push(e),
    },
  });
  const open = () => {
    const s = new RawDeltaStream(server!.address);
    streams.push(s);
    return s;
  };
  return { store, events, records, open, ads: server.ads };
}

describe("DeltaAdsServer", () => {
  it("answers a wildcard subscription with every resource, versioned by content, in one Any each", async () => {
    const { open } = await setup({ a: "A", b: "B" });
    const s = open();
    s.send({ node, typeUrl: T });
    const r = await s.next();
    expect(r.typeUrl).toBe(T);
    expect(names(r)).toEqual(["a", "b"]);
    expect(r.removedResources).toEqual([]);
    const a = r.resources.find((x) => x.name === "a")!;
    expect(a.version).toBe(resourceVersion(bytes("A")));
    expect(a.resource?.type_url).toBe(T);
    expect(Buffer.from(a.resource!.value).toString()).toBe("A");
    expect(r.nonce).not.toBe("");
  });

  it("treats an explicit '*' as wildcard, and answers an empty type with an empty response", async () => {
    const { open } = await setup({ a: "A" });
    const s = open();
    s.send({ node, typeUrl: T, resourceNamesSubscribe: ["*"] });
    expect(names(await s.next())).toEqual(["a"]);
    s.send({ typeUrl: OTHER });
    const empty = await s.next();
    expect(empty.typeUrl).toBe(OTHER);
    expect(empty.resources).toEqual([]);
  });

  it("sends only the upserted resource, then a removal, each with a fresh nonce", async () => {
    const { open, store } = await setup({ a: "A", b: "B" });
    const s = open();
    s.send({ node, typeUrl: T });
    const first = await s.next();

    store.applyBatch(T, { upserts: [["b", bytes("B2")]] });
    const upsert = await s.next();
    expect(names(upsert)).toEqual(["b"]);
    expect(upsert.removedResources).toEqual([]);

    store.applyBatch(T, { removes: ["a"] });
    const removal = await s.next();
    expect(removal.resources).toEqual([]);
    expect(removal.removedResources).toEqual(["a"]);

    expect(new Set([first.nonce, upsert.nonce, removal.nonce]).size).toBe(3);
    // Unchanged bytes are not a change.
    store.applyBatch(T, { upserts: [["b", bytes("B2")]] });
    await s.expectSilence();
  });

  it("sends a batch of three changes as exactly one response", async () => {
    const { open, store } = await setup({ a: "A", b: "B" });
    const s = open();
    s.send({ node, typeUrl: T });
    await s.next();
    store.applyBatch(T, {
      upserts: [
        ["b", bytes("B2")],
        ["c", bytes("C")],
      ],
      removes: ["a"],
    });
    const r = await s.next();
    expect(names(r)).toEqual(["b", "c"]);
    expect(r.removedResources).toEqual(["a"]);
    await s.expectSilence();
  });

  it("resumes from initial_resource_versions: only changed, new and removed resources", async () => {
    const { open } = await setup({ same: "S", changed: "C2", added: "N" });
    const s = open();
    s.send({
      node,
      typeUrl: T,
      initialResourceVersions: {
        same: resourceVersion(bytes("S")),
        changed: resourceVersion(bytes("C1")),
        gone: resourceVersion(bytes("G")),
      },
    });
    const r = await s.next();
    expect(names(r)).toEqual(["added", "changed"]);
    expect(r.removedResources).toEqual(["gone"]);
  });

  it("serves explicit subscriptions by name and follows (un)subscribes", async () => {
    const { open, store } = await setup({ a: "A", b: "B" });
    const s = open();
    s.send({ node, typeUrl: T, resourceNamesSubscribe: ["a", "missing"] });
    const first = await s.next();
    expect(names(first)).toEqual(["a"]);
    expect(first.removedResources).toEqual(["missing"]); // "does not exist"

    store.applyBatch(T, { upserts: [["b", bytes("B2")]] });
    await s.expectSilence();

    s.send({ typeUrl: T, resourceNamesSubscribe: ["b"], resourceNamesUnsubscribe: ["a"] });
    expect(names(await s.next())).toEqual(["b"]);
    store.applyBatch(T, { upserts: [["a", bytes("A2")]] });
    await s.expectSilence();
  });

  it("reports ACKs and NACKs, logs the NACK, and keeps pushing after it", async () => {
    const { open, store, events, records, ads } = await setup({ a: "A" });
    const s = open();
    s.send({ node, typeUrl: T });
    const first = await s.next();
    s.send({ typeUrl: T, responseNonce: first.nonce });

    store.applyBatch(T, { upserts: [["a", bytes("bad")]] });
    const bad = await s.next();
    s.send({
      typeUrl: T,
      responseNonce: bad.nonce,
      errorDetail: { code: 3, message: 'resource "a": broken' },
    });
    await s.expectSilence(); // the rejected resources are not resent

    store.applyBatch(T, { upserts: [["a", bytes("A3")]] });
    const next = await s.next();
    expect(names(next)).toEqual(["a"]);

    expect(events.acks.map((e) => e.nonce)).toEqual([first.nonce]);
    expect(events.nacks).toMatchObject([
      { typeUrl: T, nonce: bad.nonce, code: 3, message: 'resource "a": broken' },
    ]);
    expect(records).toContainEqual(
      expect.objectContaining({ level: "warn", type: T, nonce: bad.nonce, error: 'resource "a": broken' }),
    );
    expect(ads.clients()).toMatchObject([
      {
        node: { id: node.id, cluster: "Kubernetes" },
        subscriptions: [
          {
            typeUrl: T,
            wildcard: true,
            resources: 1,
            lastAckedNonce: first.nonce,
            lastSentNonce: next.nonce,
          },
        ],
      },
    ]);
  });

  it("opens on the first request and closes cleanly when the client cancels", async () => {
    const { open, events, ads, records } = await setup();
    const s = open();
    s.send({ node: { ...node, metadata: { fields: { CLUSTER_ID: { stringValue: "c1" } } } }, typeUrl: T });
    await s.next();
    expect(events.opened).toMatchObject([{ node: { id: node.id, metadata: { CLUSTER_ID: "c1" } } }]);
    s.close();
    await expect.poll(() => events.closed.length).toBe(1);
    expect(ads.clients()).toEqual([]);
    expect(records.filter((r) => r["level"] === "warn" || r["level"] === "error")).toEqual([]);
  });

  it("ends every stream on disconnectAll", async () => {
    const { open, ads, events } = await setup();
    const s = open();
    s.send({ node, typeUrl: T });
    await s.next();
    ads.disconnectAll();
    await expect.poll(() => s.ended).toBe(true);
    expect(events.closed).toHaveLength(1);
  });
});

describe("DeltaAdsServer with a per-stream visibility", () => {
  // What xds-auth.ts does: the stream's handler passes what its caller may see.
  async function setupVisible(seed: Record<string, string>, visible: ResourceVisibility) {
    const store = new ResourceStore();
    store.applyBatch(T, { upserts: Object.entries(seed).map(([k, v]) => [k, bytes(v)] as const) });
    const { logger } = createMemoryLogger("debug");
    const grpcServer = new Server();
    const ads = new DeltaAdsServer({ store, logger });
    grpcServer.addService(protos().adsService, {
      DeltaAggregatedResources: (call: Parameters<DeltaAdsServer["handleStream"]>[0]) =>
        ads.handleStream(call, visible),
    });
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    const address = `127.0.0.1:${port}`;
    server = {
      server: grpcServer,
      ads,
      port,
      address,
      stop: async () => {
        ads.close();
        grpcServer.forceShutdown();
      },
    };
    const open = () => {
      const s = new RawDeltaStream(address);
      streams.push(s);
      return s;
    };
    return { store, open };
  }
  const notSecret: ResourceVisibility = (typeUrl, name) => typeUrl !== T || !name.startsWith("secret-");

  it("never sends a hidden resource to a wildcard subscription, not even when it changes", async () => {
    const { open, store } = await setupVisible({ a: "A", "secret-1": "S" }, notSecret);
    const s = open();
    s.send({ node, typeUrl: T });
    const first = await s.next();
    expect(names(first)).toEqual(["a"]);
    expect(first.removedResources).toEqual([]);
    s.send({ typeUrl: T, responseNonce: first.nonce });

    // A batch with a hidden and a visible change: only the visible one goes out.
    store.applyBatch(T, {
      upserts: [
        ["secret-1", bytes("S2")],
        ["secret-2", bytes("S")],
        ["b", bytes("B")],
      ],
    });
    const next = await s.next();
    expect(names(next)).toEqual(["b"]);
    expect(next.removedResources).toEqual([]);
    // Hidden-only changes and removals: nothing at all.
    store.applyBatch(T, { upserts: [["secret-1", bytes("S3")]], removes: ["secret-2"] });
    await s.expectSilence();
  });

  it("answers a hidden resource asked for by name as removed, as if it did not exist", async () => {
    const { open, store } = await setupVisible({ a: "A", "secret-1": "S" }, notSecret);
    const s = open();
    s.send({ node, typeUrl: T, resourceNamesSubscribe: ["a", "secret-1"] });
    const first = await s.next();
    expect(names(first)).toEqual(["a"]);
    expect(first.removedResources).toEqual(["secret-1"]);
    store.applyBatch(T, { upserts: [["secret-1", bytes("S2")]] });
    await s.expectSilence();
  });

  it("tells a reconnecting client that holds a hidden resource that it is gone", async () => {
    const { open } = await setupVisible({ a: "A", "secret-1": "S" }, notSecret);
    const s = open();
    s.send({
      node,
      typeUrl: T,
      initialResourceVersions: { a: resourceVersion(bytes("A")), "secret-1": resourceVersion(bytes("S")) },
    });
    const r = await s.next();
    expect(r.resources).toEqual([]);
    expect(r.removedResources).toEqual(["secret-1"]);
  });

  it("hides nothing of another type", async () => {
    const { open, store } = await setupVisible({}, notSecret);
    store.applyBatch(OTHER, { upserts: [["secret-1", bytes("S")]] });
    const s = open();
    s.send({ node, typeUrl: OTHER });
    expect(names(await s.next())).toEqual(["secret-1"]);
  });
});
