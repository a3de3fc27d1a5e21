// The client pool: which CONNECTs share a session, when another opens, and when a session stops
// being handed out (idle, GOAWAY, rotated certificate, dead peer), on real loopback sockets.

import { constants } from "node:http2";
import { connect, createServer, type Socket } from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WorkloadCertificate } from "../ca/authority.js";
import type { HboneStream } from "./client.js";
import { HboneErrorCode } from "./errors.js";
import { HboneClientPool, type HboneClientPoolOptions, type HboneConnectRequest } from "./pool.js";
import { respondStatus } from "./server.js";
import {
  Cleanup,
  createTestMesh,
  eventually,
  listen,
  pipeTo,
  readAll,
  startEchoServer,
  startHboneServer,
  type TestMesh,
} from "./testing.js";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let mesh: TestMesh;
beforeAll(async () => {
  mesh = await createTestMesh();
});

function newPool(opts: HboneClientPoolOptions = {}): HboneClientPool {
  const pool = new HboneClientPool(opts);
  cleanup.add(() => pool.destroy());
  return pool;
}

function req(
  destination: { host: string; port: number },
  extra: Partial<HboneConnectRequest> = {},
): HboneConnectRequest {
  return {
    source: mesh.clientCert,
    rootsPem: mesh.roots,
    destination,
    expectedIdentities: [mesh.serverId.toString()],
    authority: "127.0.0.1:9",
    ...extra,
  };
}

async function echoes(stream: HboneStream, text: string): Promise<void> {
  stream.end(text);
  expect((await readAll(stream)).toString()).toBe(text);
}

async function echoServer() {
  const echo = await startEchoServer(cleanup);
  return startHboneServer(mesh, cleanup, { onStream: pipeTo(echo) });
}

describe("HboneClientPool", () => {
  it("shares one session between CONNECTs with the same key, concurrent or not", async () => {
    const { destination, hbone } = await echoServer();
    const pool = newPool();
    const other = "spiffe://cluster.local/ns/backend/sa/canary";
    const both = req(destination, { expectedIdentities: [mesh.serverId.toString(), other] });
    // Concurrent first connects wait for the one session being opened rather than each opening one.
    const [a, b] = await Promise.all([pool.connect(both), pool.connect(both)]);
    // Expected identities are a set: their order does not make another key.
    const c = await pool.connect({ ...both, expectedIdentities: [other, mesh.serverId.toString()] });
    expect(pool.stats()).toMatchObject({ sessions: 1, activeStreams: 3 });
    expect(hbone.sessionCount).toBe(1);
    await Promise.all([echoes(a, "a"), echoes(b, "b"), echoes(c, "c")]);
    await eventually(() => expect(pool.stats()).toMatchObject({ sessions: 1, activeStreams: 0 }));
    await echoes(await pool.connect(both), "d");
    expect(hbone.sessionCount).toBe(1);
  });

  it("keys by destination and source address", async () => {
    const one = await echoServer();
    const two = await echoServer();
    const pool = newPool();
    await echoes(await pool.connect(req(one.destination)), "1");
    await echoes(await pool.connect(req(two.destination)), "2");
    await echoes(await pool.connect(req(one.destination, { localAddress: "127.0.0.1" })), "3");
    const stats = pool.stats();
    expect(stats.sessions).toBe(3);
    expect(Object.keys(stats.byKey)).toHaveLength(3);
    expect(one.requests.map((r) => r.remoteAddress)).toEqual(["127.0.0.1", "127.0.0.1"]);
  });

  it("opens another session when every one has maxStreamsPerSession streams", async () => {
    const { destination, hbone } = await echoServer();
    const pool = newPool({ maxStreamsPerSession: 2 });
    const streams = await Promise.all([1, 2, 3, 4, 5].map(() => pool.connect(req(destination))));
    const stats = pool.stats();
    expect(stats.sessions).toBe(3);
    expect(
      Object.values(stats.byKey)
        .flat()
        .map((s) => s.activeStreams)
        .sort(),
    ).toEqual([1, 2, 2]);
    expect(hbone.sessionCount).toBe(3);
    await Promise.all(streams.map((s, i) => echoes(s, `stream ${i}`)));
  });

  it("closes a session idle for idleTimeoutMs", async () => {
    const { destination, hbone } = await echoServer();
    const pool = newPool({ idleTimeoutMs: 100 });
    await echoes(await pool.connect(req(destination)), "x");
    expect(pool.stats().sessions).toBe(1);
    await eventually(() => expect(pool.stats().sessions).toBe(0));
    await eventually(() => expect(hbone.sessionCount).toBe(0));
  });

  it("stops using a session after GOAWAY; its open stream still finishes", async () => {
    const echo = await startEchoServer(cleanup);
    const forward = pipeTo(echo);
    const { destination, hbone } = await startHboneServer(mesh, cleanup, {
      onStream: (stream, request) => {
        forward(stream);
        // Keep this stream, refuse later ones: as a draining peer does.
        if (request.authority === "10.0.0.1:1") request.session.goaway(constants.NGHTTP2_NO_ERROR, stream.id);
      },
    });
    const pool = newPool();
    const first = await pool.connect(req(destination, { authority: "10.0.0.1:1" }));
    await eventually(() =>
      expect(
        Object.values(pool.stats().byKey)
          .flat()
          .map((s) => s.state),
      ).toEqual(["retired"]),
    );
    await echoes(await pool.connect(req(destination, { authority: "10.0.0.1:2" })), "on a new session");
    await echoes(first, "on the old one");
    await eventually(() => expect(pool.stats().sessions).toBe(1));
    await eventually(() => expect(hbone.sessionCount).toBe(1));
  });

  it("opens a new session for a rotated source certificate and closes the old one when idle", async () => {
    const { destination, hbone, requests } = await echoServer();
    const pool = newPool();
    const old = await pool.connect(req(destination));
    const rotated: WorkloadCertificate = await mesh.ca.issueWorkloadCertificate(mesh.clientId);
    const fresh = await pool.connect(req(destination, { source: rotated }));
    const states = Object.values(pool.stats().byKey).flat();
    expect(states.map((s) => [s.sourceSerial, s.state])).toEqual([
      [mesh.clientCert.serial, "retired"],
      [rotated.serial, "ready"],
    ]);
    expect(requests[0]!.session).not.toBe(requests[1]!.session);
    await echoes(old, "old cert");
    await echoes(fresh, "new cert");
    await eventually(() => expect(pool.stats().sessions).toBe(1));
    await eventually(() => expect(hbone.sessionCount).toBe(1));
  });

  it("retries once on a fresh stream when the server refuses a stream (REFUSED_STREAM)", async () => {
    const echo = await startEchoServer(cleanup);
    const forward = pipeTo(echo);
    let seen = 0;
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => {
        if (++seen === 1) stream.close(constants.NGHTTP2_REFUSED_STREAM);
        else forward(stream);
      },
    });
    await echoes(await newPool().connect(req(destination)), "second try");
    expect(seen).toBe(2);
  });

  it("does not retry other resets", async () => {
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => stream.close(constants.NGHTTP2_CANCEL),
    });
    const err = await newPool()
      .connect(req(destination))
      .catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.STREAM_RESET);
    expect(err.details.rstCode).toBe(constants.NGHTTP2_CANCEL);
    expect(err.message).toBe(
      `HBONE CONNECT to 127.0.0.1:${destination.port} (authority 127.0.0.1:9) was reset (CANCEL)`,
    );
  });

  it("drops a session whose peer stops answering PINGs, failing its streams with TIMEOUT", async () => {
    const { destination } = await echoServer();
    const proxy = await startFreezableProxy(destination.port);
    let dialed = 0;
    const pool = newPool({
      keepalive: { intervalMs: 50, timeoutMs: 200 },
      // The hook makes the TCP connection: here, through a proxy we can freeze.
      createConnection: ({ host }) => {
        dialed++;
        return connect({ host, port: proxy.port });
      },
    });
    const stream = await pool.connect(req(destination));
    // The session is idle now: every write from the client is a keepalive PING, answered.
    const before = proxy.writesFromClient();
    await eventually(() => expect(proxy.writesFromClient()).toBeGreaterThanOrEqual(before + 2));
    expect(pool.stats().sessions).toBe(1);
    const failed = new Promise<Error>((resolve) => stream.once("error", resolve));
    proxy.freeze();
    const err = (await failed) as Error & { code?: string };
    expect(err.code).toBe(HboneErrorCode.TIMEOUT);
    expect(err.message).toBe("HTTP/2 PING to the peer unanswered after 200 ms");
    await eventually(() => expect(pool.stats().sessions).toBe(0));
    expect(dialed).toBe(1);
  });

  it("refuses requests without expected identities, and after close()", async () => {
    const { destination } = await echoServer();
    const pool = newPool();
    const none = await pool.connect(req(destination, { expectedIdentities: [] })).catch((e) => e);
    expect(none.code).toBe(HboneErrorCode.INVALID_REQUEST);
    const open = await pool.connect(req(destination));
    const closing = pool.close();
    await echoes(open, "finishes after close()");
    await closing;
    expect(pool.stats().sessions).toBe(0);
    const closed = await pool.connect(req(destination)).catch((e) => e);
    expect(closed.code).toBe(HboneErrorCode.INVALID_REQUEST);
  });

  it("answers with the status when every try is refused by onStream", async () => {
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => respondStatus(stream, 503),
    });
    const err = await newPool()
      .connect(req(destination))
      .catch((e) => e);
    expect(err.details.status).toBe(503);
  });

  // A refused stream used to be destroyed on the answer, sending RST_STREAM: nghttp2 servers allow
  // a burst of 1000 of those (then 33/s) and then answer GOAWAY INTERNAL_ERROR, failing every
  // stream in flight on the session, refused or not.
  it("ends refused streams cleanly: 3,000 refusals on one session cost it no GOAWAY", async () => {
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => respondStatus(stream, 503),
    });
    const pool = newPool();
    const outcomes = new Map<string, number>();
    let left = 3000;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (left-- > 0) {
          type Refusal = { code?: string; details?: { status?: number }; message?: string };
          const err = await pool.connect(req(destination)).then(
            (s): Refusal => {
              s.destroy();
              return { message: "answered 200" };
            },
            (e: Refusal) => e,
          );
          const key = err.details?.status === 503 ? "503" : `${err.code}: ${err.message}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }),
    );
    expect(Object.fromEntries(outcomes)).toEqual({ "503": 3000 });
    await eventually(() => expect(pool.stats().activeStreams).toBe(0));
    expect(pool.stats().sessions).toBe(1);
  }, 60_000);
});

/** A TCP relay that can stop forwarding without closing anything: a peer that silently died. */
async function startFreezableProxy(
  target: number,
): Promise<{ port: number; freeze(): void; writesFromClient(): number }> {
  const pairs: [Socket, Socket][] = [];
  let writes = 0;
  const server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: target });
    client.on("data", () => {
      writes++;
    });
    client.on("error", () => {});
    upstream.on("error", () => {});
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
    cleanup.add(() => {
      client.destroy();
      upstream.destroy();
    });
  });
  const port = await listen(server, cleanup);
  return {
    port,
    writesFromClient: () => writes,
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
  };
}
