// The client side of HBONE end to end on loopback: tunnels through a real server to an echo server,
// server identity checks, refusals with their statuses, half-close and bulk transfer.

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestRoot, testIdentity } from "../ca/testing.js";
import { HboneErrorCode } from "./errors.js";
import { HboneClientPool } from "./pool.js";
import { respondStatus } from "./server.js";
import {
  CONNECTION_WINDOW_BYTES,
  MAX_FRAME_BYTES,
  SERVER_MAX_CONCURRENT_STREAMS,
  STREAM_WINDOW_BYTES,
} from "./settings.js";
import {
  Cleanup,
  createTestMesh,
  eventually,
  leafCertificate,
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

function newPool(opts: ConstructorParameters<typeof HboneClientPool>[0] = {}): HboneClientPool {
  const pool = new HboneClientPool(opts);
  cleanup.add(() => pool.destroy());
  return pool;
}

function request(destination: { host: string; port: number }, extra: Record<string, unknown> = {}) {
  return {
    source: mesh.clientCert,
    rootsPem: mesh.roots,
    destination,
    expectedIdentities: [mesh.serverId.toString()],
    authority: "127.0.0.1:8080",
    ...extra,
  };
}

describe("HBONE CONNECT", () => {
  it("tunnels bytes to the upstream and back, with the client's identity and headers", async () => {
    const echo = await startEchoServer(cleanup);
    const { destination, requests } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(echo) });
    const stream = await newPool().connect(
      request(destination, {
        authority: "10.0.0.2:8080",
        headers: {
          forwarded: 'for="10.0.0.1:40000"',
          baggage: "k8s.namespace.name=frontend",
          traceparent: "00-ab-cd-01",
        },
      }),
    );
    expect(stream.hbone.peerIdentity.equals(mesh.serverId)).toBe(true);
    stream.end("hello through the mesh");
    expect((await readAll(stream)).toString()).toBe("hello through the mesh");

    expect(requests).toHaveLength(1);
    const req = requests[0]!;
    expect(req.peerIdentity.equals(mesh.clientId)).toBe(true);
    expect(req.authority).toBe("10.0.0.2:8080");
    expect(req.target).toEqual({ address: "10.0.0.2", port: 8080, family: 4 });
    expect(req.headers["forwarded"]).toBe('for="10.0.0.1:40000"');
    expect(req.headers["baggage"]).toBe("k8s.namespace.name=frontend");
    expect(req.headers["traceparent"]).toBe("00-ab-cd-01");
    expect(req.localPort).toBe(destination.port);
    expect(req.remoteAddress).toBe("127.0.0.1");
  });

  it("negotiates Istio's window and frame sizes on both sides", async () => {
    const echo = await startEchoServer(cleanup);
    const { destination, requests } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(echo) });
    const stream = await newPool().connect(request(destination));
    stream.end("x");
    await readAll(stream);
    const client = stream.session!;
    const server = requests[0]!.session;
    expect(client.remoteSettings).toMatchObject({
      initialWindowSize: STREAM_WINDOW_BYTES,
      maxFrameSize: MAX_FRAME_BYTES,
      maxConcurrentStreams: SERVER_MAX_CONCURRENT_STREAMS,
    });
    expect(server.remoteSettings).toMatchObject({
      initialWindowSize: STREAM_WINDOW_BYTES,
      maxFrameSize: MAX_FRAME_BYTES,
    });
    await eventually(() => expect(client.state.effectiveLocalWindowSize).toBe(CONNECTION_WINDOW_BYTES));
    expect(server.state.effectiveLocalWindowSize).toBe(CONNECTION_WINDOW_BYTES);
  });

  it("refuses a server whose SPIFFE ID is not expected, naming both", async () => {
    const { destination, requests } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(1) });
    const expected = testIdentity("backend", "other").toString();
    const err = await newPool()
      .connect(request(destination, { expectedIdentities: [expected] }))
      .catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.IDENTITY_MISMATCH);
    expect(err.message).toBe(
      `server identity ${mesh.serverId} at 127.0.0.1:${destination.port} is not one of [${expected}]`,
    );
    expect(requests).toHaveLength(0);
  });

  it("refuses an expired server certificate", async () => {
    const now = Date.now();
    const expired = await leafCertificate(mesh.root, mesh.serverId, {
      notBefore: new Date(now - 7200_000),
      notAfter: new Date(now - 3600_000),
    });
    const { destination } = await startHboneServer(mesh, cleanup, {
      certificate: () => expired,
      onStream: pipeTo(1),
    });
    const err = await newPool()
      .connect(request(destination))
      .catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.PEER_UNTRUSTED);
    expect(err.message).toBe(`server certificate for 127.0.0.1:${destination.port} has expired`);
  });

  it("refuses a server certificate from another CA, even one with the same name", async () => {
    const other = await createTestRoot();
    const foreign = await leafCertificate(other, mesh.serverId);
    const { destination } = await startHboneServer(mesh, cleanup, {
      certificate: () => foreign,
      onStream: pipeTo(1),
    });
    const err = await newPool()
      .connect(request(destination))
      .catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.PEER_UNTRUSTED);
    expect(err.message).toBe(
      `server certificate for 127.0.0.1:${destination.port} is not signed by the mesh root`,
    );
  });

  it.each([401, 503])("turns a %i answer into a typed error carrying the status", async (status) => {
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => respondStatus(stream, status),
    });
    const pool = newPool();
    const err = await pool.connect(request(destination, { authority: "10.0.0.9:80" })).catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.CONNECT_REFUSED);
    expect(err.details.status).toBe(status);
    expect(err.message).toBe(
      `HBONE CONNECT to 127.0.0.1:${destination.port} (authority 10.0.0.9:80) answered ${status}`,
    );
    // A refusal is per stream: the session stays usable and the slot is released.
    expect(pool.stats()).toMatchObject({ sessions: 1, activeStreams: 0 });
  });

  it("answers 400 to an ill-formed :authority", async () => {
    const { destination, requests } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(1) });
    const pool = newPool();
    for (const authority of [
      "example.com:80",
      "10.0.0.1",
      "10.0.0.1:0",
      "10.0.0.1:65536",
      "[::1]",
      "::1:80",
    ]) {
      const err = await pool.connect(request(destination, { authority })).catch((e) => e);
      expect(err.details?.status, authority).toBe(400);
    }
    expect(requests).toHaveLength(0);
  });

  it("keeps each direction open after the other half-closes", async () => {
    // Client ends first: the server sees 'end' and can still write back.
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream, req) => {
        respondStatus(stream, 200);
        if (req.authority === "10.0.0.1:1") {
          readAll(stream).then((got) => stream.end(`server read ${got.length} bytes after client end`));
        } else {
          // Server ends first, then keeps reading until the client ends.
          stream.end("server done");
          readAll(stream).then((got) => {
            serverGot = got.toString();
          });
        }
      },
    });
    let serverGot = "";
    const pool = newPool();
    const a = await pool.connect(request(destination, { authority: "10.0.0.1:1" }));
    a.end("12345");
    expect((await readAll(a)).toString()).toBe("server read 5 bytes after client end");

    const b = await pool.connect(request(destination, { authority: "10.0.0.1:2" }));
    expect((await readAll(b)).toString()).toBe("server done");
    // Our side is still writable after the server's END_STREAM. Node quirk: once both sides have
    // ended, 'close' comes before end()'s callback and 'finish' never fires.
    const closed = new Promise((resolve) => b.once("close", resolve));
    b.end("client after server end");
    await closed;
    await eventually(() => expect(serverGot).toBe("client after server end"));
  });

  it("carries 10 MB intact", async () => {
    const echo = await startEchoServer(cleanup);
    const { destination } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(echo) });
    const stream = await newPool().connect(request(destination));
    const data = randomBytes(10 * 1024 * 1024);
    const received = readAll(stream);
    stream.end(data);
    const got = await received;
    expect(got.length).toBe(data.length);
    expect(createHash("sha256").update(got).digest("hex")).toBe(
      createHash("sha256").update(data).digest("hex"),
    );
  });

  it("fails with CONNECT_FAILED when nothing listens, TIMEOUT when the server never answers", async () => {
    const closed = createServer();
    const port = await listen(closed, cleanup);
    await new Promise((resolve) => closed.close(resolve));
    const refused = await newPool()
      .connect(request({ host: "127.0.0.1", port }))
      .catch((e) => e);
    expect(refused.code).toBe(HboneErrorCode.CONNECT_FAILED);
    expect(refused.message).toBe(`server 127.0.0.1:${port} refused the TCP connection`);

    const silent = createServer(() => {});
    const silentPort = await listen(silent, cleanup);
    const timedOut = await newPool()
      .connect(request({ host: "127.0.0.1", port: silentPort }, { connectTimeoutMs: 200 }))
      .catch((e) => e);
    expect(timedOut.code).toBe(HboneErrorCode.TIMEOUT);
    expect(timedOut.message).toBe(
      `HBONE CONNECT to 127.0.0.1:${silentPort} (authority 127.0.0.1:8080) timed out after 200 ms`,
    );
  });

  it("stops waiting when the caller aborts, and cancels the stream", async () => {
    let serverStreamClosed = false;
    const controller = new AbortController();
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => {
        // Never answers, as an upstream connect that hangs; the caller gives up once it is waiting.
        stream.on("close", () => {
          serverStreamClosed = true;
        });
        controller.abort(new Error("client went away"));
      },
    });
    const pending = newPool().connect(request(destination, { signal: controller.signal }));
    const err = await pending.catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.ABORTED);
    expect(err.cause.message).toBe("client went away");
    await eventually(() => expect(serverStreamClosed).toBe(true));
  });
});
