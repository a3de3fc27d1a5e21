// The server side of HBONE: which clients it refuses and how, what it answers itself (405, 400,
// 500), that garbage never reaches the handler nor crashes it, rotation and graceful close.

import { randomBytes } from "node:crypto";
import { type ClientHttp2Session, connect as connectHttp2 } from "node:http2";
import { connect as connectTcp } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestRoot } from "../ca/testing.js";
import { SpiffeId } from "../identity/spiffe.js";
import type { HboneStream } from "./client.js";
import { HboneErrorCode } from "./errors.js";
import { HboneClientPool } from "./pool.js";
import { respondStatus } from "./server.js";
import {
  Cleanup,
  createTestMesh,
  eventually,
  leafCertificate,
  pipeTo,
  readAll,
  startEchoServer,
  startHboneServer,
  type TestMesh,
} from "./testing.js";
import { presentedChain } from "./tls-options.js";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let mesh: TestMesh;
beforeAll(async () => {
  mesh = await createTestMesh();
});

function newPool(): HboneClientPool {
  const pool = new HboneClientPool();
  cleanup.add(() => pool.destroy());
  return pool;
}

function connectVia(
  pool: HboneClientPool,
  destination: { host: string; port: number },
  source = mesh.clientCert,
) {
  return pool.connect({
    source,
    rootsPem: mesh.roots,
    destination,
    expectedIdentities: [mesh.serverId.toString()],
    authority: "127.0.0.1:9",
  });
}

/** An HTTP/2 session with our client certificate but no HBONE client, to send what it never would. */
async function rawSession(port: number): Promise<ClientHttp2Session> {
  const session = connectHttp2(`https://127.0.0.1:${port}`, {
    key: mesh.clientCert.privateKeyPem,
    cert: presentedChain(mesh.clientCert),
    ca: mesh.roots,
    checkServerIdentity: () => undefined,
  });
  cleanup.add(() => session.destroy());
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  return session;
}

function answer(
  session: ClientHttp2Session,
  headers: Record<string, string>,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: false });
    stream.once("response", (h) => {
      stream.destroy();
      resolve(h);
    });
    stream.once("error", reject);
  });
}

describe("HBONE server", () => {
  it("answers 405 to anything but CONNECT, without calling the handler", async () => {
    const { port, requests } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(1) });
    const session = await rawSession(port);
    for (const method of ["GET", "POST", "PUT"]) {
      const h = await answer(session, { ":method": method, ":path": "/" });
      expect(h[":status"], method).toBe(405);
      expect(h["allow"]).toBe("CONNECT");
    }
    expect(requests).toHaveLength(0);
  });

  it("answers 500 when the handler throws", async () => {
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: () => {
        throw new Error("handler bug");
      },
    });
    const err = await connectVia(newPool(), destination).catch((e) => e);
    expect(err.details.status).toBe(500);
  });

  it("refuses a client certificate from another CA, with the reason", async () => {
    const other = await createTestRoot();
    const foreign = await leafCertificate(other, mesh.clientId);
    const { destination, requests, records } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(1) });
    const err = await connectVia(newPool(), destination, foreign).catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.CERT_REJECTED);
    const reason = "client certificate is not signed by the mesh root (UNABLE_TO_VERIFY_LEAF_SIGNATURE)";
    expect(err.message).toBe(`server 127.0.0.1:${destination.port} refused our certificate: ${reason}`);
    expect(requests).toHaveLength(0);
    expect(records.map((r) => r["msg"])).toContain(`refused HBONE client: ${reason}`);
  });

  it("refuses a client from another trust domain with GOAWAY and the reason", async () => {
    const stranger = SpiffeId.parse("spiffe://other.example/ns/frontend/sa/client");
    // Signed by our own root: only the trust domain is wrong, so OpenSSL accepts the chain.
    const cert = await leafCertificate(mesh.root, stranger);
    const { destination, requests } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(1) });
    const err = await connectVia(newPool(), destination, cert).catch((e) => e);
    expect(err.code).toBe(HboneErrorCode.CERT_REJECTED);
    expect(err.message).toBe(
      `server 127.0.0.1:${destination.port} refused our certificate: client identity ${stranger} is in trust domain "other.example", not "cluster.local"`,
    );
    expect(requests).toHaveLength(0);
  });

  it("refuses an expired client certificate and a client without one", async () => {
    const now = Date.now();
    const expired = await leafCertificate(mesh.root, mesh.clientId, {
      notBefore: new Date(now - 7200_000),
      notAfter: new Date(now - 3600_000),
    });
    const { port, destination, requests, records } = await startHboneServer(mesh, cleanup, {
      onStream: pipeTo(1),
    });
    const err = await connectVia(newPool(), destination, expired).catch((e) => e);
    expect(err.message).toBe(
      `server 127.0.0.1:${port} refused our certificate: client certificate has expired (CERT_HAS_EXPIRED)`,
    );

    const session = connectHttp2(`https://127.0.0.1:${port}`, {
      ca: mesh.roots,
      checkServerIdentity: () => undefined,
    });
    cleanup.add(() => session.destroy());
    const goaway = new Promise<string>((resolve) =>
      session.once("goaway", (_code: number, _last: number, data: Buffer) => resolve(data.toString())),
    );
    session.on("error", () => {});
    session.request({ ":method": "CONNECT", ":authority": "127.0.0.1:9" }).on("error", () => {});
    expect(await goaway).toBe("client presented no certificate");
    expect(requests).toHaveLength(0);
    expect(records.map((r) => r["msg"])).toContain("refused HBONE client: client presented no certificate");
  });

  it("closes garbage, plaintext HTTP and non-h2 TLS without crashing, then still serves", async () => {
    const echo = await startEchoServer(cleanup);
    const { port, destination, records, requests } = await startHboneServer(mesh, cleanup, {
      onStream: pipeTo(echo),
    });
    const closedByServer = (socket: NodeJS.EventEmitter) =>
      new Promise<void>((resolve) => {
        socket.on("error", () => {});
        socket.once("close", () => resolve());
        // Read whatever the server sends (a GOAWAY): a paused socket never notices the FIN.
        (socket as NodeJS.ReadableStream).resume();
      });

    const garbage = connectTcp({ host: "127.0.0.1", port });
    garbage.write(randomBytes(4096));
    await closedByServer(garbage);

    const http1 = connectTcp({ host: "127.0.0.1", port });
    http1.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await closedByServer(http1);

    const tlsOptions = {
      host: "127.0.0.1",
      port,
      key: mesh.clientCert.privateKeyPem,
      cert: presentedChain(mesh.clientCert),
      ca: mesh.roots,
      checkServerIdentity: () => undefined,
    };
    for (const ALPNProtocols of [undefined, ["http/1.1"]]) {
      const tls = connectTls({ ...tlsOptions, ...(ALPNProtocols ? { ALPNProtocols } : {}) });
      tls.on("secureConnect", () => tls.write("GET / HTTP/1.1\r\n\r\n"));
      await closedByServer(tls);
    }
    // TLS and ALPN h2 right, then not the HTTP/2 preface.
    const notH2: TLSSocket = connectTls({ ...tlsOptions, ALPNProtocols: ["h2"] });
    notH2.on("secureConnect", () => notH2.write("PRI * HTTP/1.1\r\n\r\nnot really\r\n\r\n"));
    await closedByServer(notH2);

    const stream = await connectVia(newPool(), destination);
    stream.end("still alive");
    expect((await readAll(stream)).toString()).toBe("still alive");
    expect(requests).toHaveLength(1);
    expect(records.filter((r) => r["level"] !== "debug" && r["level"] !== "info")).toEqual([]);
  });

  it("serves a rotated certificate to new connections while open sessions keep working", async () => {
    const echo = await startEchoServer(cleanup);
    let current = mesh.serverCert;
    const { hbone, destination } = await startHboneServer(mesh, cleanup, {
      certificate: () => current,
      onStream: pipeTo(echo),
    });
    const before = await connectVia(newPool(), destination);
    expect(peerSerial(before)).toBe(mesh.serverCert.serial);

    current = await mesh.ca.issueWorkloadCertificate(mesh.serverId);
    hbone.updateCertificate();
    expect(hbone.certificateSerial).toBe(current.serial);
    const after = await connectVia(newPool(), destination);
    expect(peerSerial(after)).toBe(current.serial);

    // The session from before rotation still carries data both ways.
    before.end("old session");
    expect((await readAll(before)).toString()).toBe("old session");
    after.end("new session");
    expect((await readAll(after)).toString()).toBe("new session");

    // A changed certificate() is also picked up by the next connection without updateCertificate().
    current = await mesh.ca.issueWorkloadCertificate(mesh.serverId);
    const third = await connectVia(newPool(), destination);
    expect(peerSerial(third)).toBe(current.serial);
    third.destroy();
  });

  it("closes gracefully: GOAWAY, open streams finish, then it resolves", async () => {
    const echo = await startEchoServer(cleanup);
    const { hbone, destination } = await startHboneServer(mesh, cleanup, { onStream: pipeTo(echo) });
    const pool = newPool();
    const open = await connectVia(pool, destination);
    let resolved = false;
    const closing = hbone.closeGracefully().then(() => {
      resolved = true;
    });
    // The client saw GOAWAY: its session takes no new streams.
    await eventually(() =>
      expect(
        Object.values(pool.stats().byKey)
          .flat()
          .map((s) => s.state),
      ).toEqual(["retired"]),
    );
    expect(resolved).toBe(false);
    // New tunnels cannot reach a closed listener; the open one still works.
    const refused = await connectVia(pool, destination).catch((e) => e);
    expect(refused.code).toBe(HboneErrorCode.CONNECT_FAILED);
    open.end("finishing");
    expect((await readAll(open)).toString()).toBe("finishing");
    await closing;
    expect(hbone.sessionCount).toBe(0);
  });

  it("answers what onStream decides (respondStatus is a no-op once answered)", async () => {
    const { destination } = await startHboneServer(mesh, cleanup, {
      onStream: (stream) => {
        expect(respondStatus(stream, 401)).toBe(true);
        expect(respondStatus(stream, 200)).toBe(false);
      },
    });
    const err = await connectVia(newPool(), destination).catch((e) => e);
    expect(err.details.status).toBe(401);
  });
});

function peerSerial(stream: HboneStream): string {
  return stream.hbone.peerSerial;
}
