import { once } from "node:events";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import { createLogger, createMemoryLogger } from "../telemetry/logging.js";
import { decodeAddress, encodeAddress } from "./codec.js";
import { DeltaAdsClient, type XdsChanges, type XdsResourceHandler } from "./delta-client.js";
import { type DeltaAdsHooks, DeltaAdsServer } from "./delta-server.js";
import { protos } from "./proto.js";
import { ResourceStore } from "./resource-store.js";
import { type RunningAdsServer, startAdsServer } from "./testing.js";
import { ADDRESS_TYPE_URL, type Address, AUTHORIZATION_TYPE_URL } from "./types.js";

const logger = createLogger({ level: "silent" });
const T = "type.googleapis.com/test.Text";
const bytes = (s: string) => new TextEncoder().encode(s);
// Address.workload = { uid: "u" }: decoding fills in every default, giving a complete Workload.
const MINIMAL = { workload: { uid: "u" } } as unknown as Address;
const node = { id: "ztunnel~10.0.0.1~ztunnel-abc.istio-system", cluster: "Kubernetes" };

/** A handler holding decoded text resources; "bad..." bodies fail to decode. */
function textHandler(typeUrl = T) {
  const state = new Map<string, string>();
  const applied: XdsChanges<string>[] = [];
  const handler: XdsResourceHandler<string> = {
    typeUrl,
    decode: (_name, body) => {
      const text = new TextDecoder().decode(body);
      if (text.startsWith("bad")) throw new Error(`unparsable body "${text}"`);
      return text;
    },
    apply: (changes) => {
      applied.push(changes);
      for (const [name, value] of changes.upserts) state.set(name, value);
      for (const name of changes.removes) state.delete(name);
    },
  };
  return { handler, state, applied };
}

let servers: RunningAdsServer[] = [];
let clients: DeltaAdsClient[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  for (const s of servers) await s.stop();
  servers = [];
});

async function serve(store: ResourceStore, hooks?: DeltaAdsHooks, port?: number) {
  const server = await startAdsServer({ store, logger, hooks, port });
  servers.push(server);
  return server;
}

function connect(address: string, handlers: XdsResourceHandler<unknown>[], extra = {}) {
  const client = new DeltaAdsClient({
    address,
    node,
    handlers,
    logger,
    backoff: { initialMs: 20, maxMs: 100 },
    ...extra,
  });
  clients.push(client);
  client.start();
  return client;
}

describe("DeltaAdsClient", () => {
  it("syncs every subscribed type, then follows upserts and removals", async () => {
    const store = new ResourceStore();
    const address: Address = {
      workload: { ...decodeAddress(encodeAddress(MINIMAL)).workload!, uid: "c//Pod/ns/a" },
    };
    store.applyBatch(ADDRESS_TYPE_URL, { upserts: [["c//Pod/ns/a", encodeAddress(address)]] });
    const server = await serve(store);

    const addresses = new Map<string, Address>();
    const client = connect(server.address, [
      {
        typeUrl: ADDRESS_TYPE_URL,
        decode: (name, body) => decodeAddress(body, name),
        apply: (changes: XdsChanges<Address>) => {
          for (const [name, value] of changes.upserts) addresses.set(name, value);
          for (const name of changes.removes) addresses.delete(name);
        },
      } as XdsResourceHandler<Address> as XdsResourceHandler<unknown>,
      textHandler(AUTHORIZATION_TYPE_URL).handler as XdsResourceHandler<unknown>,
    ]);
    await once(client, "synced");
    expect(client.synced).toBe(true);
    expect(addresses.get("c//Pod/ns/a")).toEqual(address);

    store.applyBatch(ADDRESS_TYPE_URL, { removes: ["c//Pod/ns/a"] });
    await expect.poll(() => addresses.size).toBe(0);
    expect(client.versions(ADDRESS_TYPE_URL).size).toBe(0);
  });

  it("NACKs a response it cannot decode, keeps its state, and accepts the next valid update", async () => {
    const store = new ResourceStore();
    store.applyBatch(T, { upserts: [["a", bytes("A")]] });
    const nacks: { nonce: string; message: string }[] = [];
    const server = await serve(store, { onNack: (e) => nacks.push(e) });
    const { handler, state, applied } = textHandler();
    const client = connect(server.address, [handler as XdsResourceHandler<unknown>]);
    await once(client, "synced");
    const versionsBefore = new Map(client.versions(T));

    // One bad resource spoils its whole response: "b" is not applied either.
    const clientNack = once(client, "nack");
    store.applyBatch(T, {
      upserts: [
        ["a", bytes("bad A")],
        ["b", bytes("B")],
      ],
    });
    const [info] = await clientNack;
    expect(info.message).toBe('resource "a": unparsable body "bad A"');
    await expect.poll(() => nacks.length).toBe(1);
    expect(nacks[0]).toMatchObject({ nonce: info.nonce, message: info.message, code: 3 });
    expect(state).toEqual(new Map([["a", "A"]]));
    expect(applied).toHaveLength(1);
    expect(client.versions(T)).toEqual(versionsBefore);

    store.applyBatch(T, { upserts: [["a", bytes("A2")]] });
    await expect.poll(() => state.get("a")).toBe("A2");
  });

  it("reconnects after a server restart and receives only what changed meanwhile", async () => {
    const store = new ResourceStore();
    store.applyBatch(T, {
      upserts: [
        ["keep", bytes("K")],
        ["change", bytes("C1")],
        ["remove", bytes("R")],
      ],
    });
    const first = await serve(store);
    const { handler, state, applied } = textHandler();
    const client = connect(first.address, [handler as XdsResourceHandler<unknown>]);
    await once(client, "synced");
    expect(applied).toHaveLength(1);

    const disconnected = once(client, "disconnected");
    await first.stop();
    const [error] = await disconnected;
    expect(error?.code).toBe(ErrorCode.XDS_STREAM);
    store.applyBatch(T, {
      upserts: [
        ["change", bytes("C2")],
        ["add", bytes("N")],
      ],
      removes: ["remove"],
    });

    const reconnected = once(client, "connected");
    await serve(store, undefined, first.port);
    await reconnected;
    await expect.poll(() => applied.length).toBe(2);
    expect([...applied[1]!.upserts.keys()].sort()).toEqual(["add", "change"]);
    expect(applied[1]!.removes).toEqual(["remove"]);
    expect(state).toEqual(
      new Map([
        ["keep", "K"],
        ["change", "C2"],
        ["add", "N"],
      ]),
    );
  });

  it("sends its call metadata and node on connect, and stops for good on close", async () => {
    const store = new ResourceStore();
    const { logger: serverLogger } = createMemoryLogger();
    const ads = new DeltaAdsServer({ store, logger: serverLogger });
    const seen: string[] = [];
    const server = new Server();
    server.addService(protos().adsService, {
      DeltaAggregatedResources: (call: Parameters<typeof ads.handleStream>[0]) => {
        seen.push(String(call.metadata.get("authorization")[0]));
        ads.handleStream(call);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    try {
      const { handler } = textHandler();
      const client = connect(`127.0.0.1:${port}`, [handler as XdsResourceHandler<unknown>], {
        metadata: async () => ({ authorization: "Bearer token-1" }),
      });
      await once(client, "synced");
      expect(seen).toEqual(["Bearer token-1"]);
      expect(ads.clients()).toMatchObject([{ node: { id: node.id, cluster: "Kubernetes" } }]);

      client.close();
      await expect.poll(() => ads.clients().length).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen).toHaveLength(1);
    } finally {
      ads.close();
      server.forceShutdown();
    }
  });
});
