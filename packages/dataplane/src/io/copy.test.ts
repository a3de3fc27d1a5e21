import { once } from "node:events";
import {
  type ClientHttp2Stream,
  connect as connectH2,
  createServer as createH2Server,
  constants as h2constants,
  type ServerHttp2Stream,
} from "node:http2";
import { connect, createServer, type Server, type Socket } from "node:net";
import {
  createHboneServer,
  createMemoryLogger,
  HboneClientPool,
  type HboneServer,
  respondStatus,
  type WorkloadCertificate,
} from "@ambient/core";
import { createTestRoot, testIdentity } from "@ambient/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { copyBidirectional } from "./copy.js";

// A proxy on port 0 that copies to an upstream, to exercise half-close through copyBidirectional.
async function proxyTo(upstreamPort: number): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const up = connect({ port: upstreamPort, host: "127.0.0.1", allowHalfOpen: true });
    void copyBidirectional(client, up);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function port(s: Server): number {
  return (s.address() as { port: number }).port;
}

function readAll(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks).toString()));
  });
}

describe("copyBidirectional", () => {
  it("client half-close: the server still answers after reading the end of the request", async () => {
    const upstream = createServer({ allowHalfOpen: true }, (s) => {
      const got = readAll(s);
      void got.then((text) => s.end(`got ${text.length} bytes`));
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    servers.push(upstream, await proxyTo(port(upstream)));
    const c = connect({ port: port(servers[1]!), host: "127.0.0.1", allowHalfOpen: true });
    c.end("hello");
    expect(await readAll(c)).toBe("got 5 bytes");
  });

  it("server half-close: the client can keep sending after the server ended", async () => {
    let received: Promise<string> = Promise.resolve("");
    const upstream = createServer({ allowHalfOpen: true }, (s) => {
      s.end("bye");
      received = readAll(s);
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    servers.push(upstream, await proxyTo(port(upstream)));
    const c = connect({ port: port(servers[1]!), host: "127.0.0.1", allowHalfOpen: true });
    expect(await readAll(c)).toBe("bye");
    c.end("still here");
    expect(await received).toBe("still here");
  });
});

describe("copyBidirectional with a side that ended before the copy", () => {
  it("passes that end on, and the copy still finishes cleanly", async () => {
    // The client sends a little and half-closes while the proxy is still deciding what to do.
    let accepted!: (s: Socket) => void;
    const client = new Promise<Socket>((r) => {
      accepted = r;
    });
    const front = createServer({ allowHalfOpen: true }, (s) => accepted(s));
    front.listen(0, "127.0.0.1");
    await once(front, "listening");
    let upstreamGot: Promise<string> = Promise.resolve("");
    const upstream = createServer({ allowHalfOpen: true }, (s) => {
      upstreamGot = readAll(s);
      void upstreamGot.then(() => s.end("answer"));
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    servers.push(front, upstream);
    const c = connect({ port: port(front), host: "127.0.0.1", allowHalfOpen: true });
    c.end("GE");
    const s = await client;
    const head = await readAll(s);
    expect(s.readableEnded).toBe(true);
    const up = connect({ port: port(upstream), host: "127.0.0.1", allowHalfOpen: true });
    await once(up, "connect");
    up.write(head);
    const copied = copyBidirectional(s, up);
    expect(await readAll(c)).toBe("answer");
    expect(await upstreamGot).toBe("GE");
    expect(await copied).toEqual({});
  });
});

/** An h2c server on 127.0.0.1:0 answering every CONNECT with `onStream`, and a client session to it. */
async function h2c(onStream: (stream: ServerHttp2Stream) => void) {
  const server = createH2Server();
  server.on("stream", (stream: ServerHttp2Stream) => {
    stream.on("error", () => {});
    stream.respond({ ":status": 200 });
    onStream(stream);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const session = connectH2(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  session.on("error", () => {});
  const open = async (): Promise<ClientHttp2Stream> => {
    const stream = session.request({ ":method": "CONNECT", ":authority": "127.0.0.1:9" });
    stream.on("error", () => {});
    await once(stream, "response");
    return stream;
  };
  const close = () => {
    session.destroy();
    server.close();
  };
  return { session, open, close };
}

/** A TCP server on 127.0.0.1:0 running `onSocket` for each connection. */
async function tcpServer(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    onSocket(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  servers.push(server);
  return port(server);
}

/** The benchmark's client app: sends one byte, reads the answer, ends once the far side has. */
const clientApp = (s: Socket) => {
  s.write("C");
  s.on("end", () => s.end());
  s.resume();
};

/** The benchmark's server app: answers one byte and closes first. */
const serverApp = (s: Socket) => s.once("data", () => s.end("c"));

async function connected(p: number): Promise<Socket> {
  const s = connect({ port: p, host: "127.0.0.1", allowHalfOpen: true });
  await once(s, "connect");
  return s;
}

describe("copyBidirectional with an HTTP/2 stream", () => {
  it("a clean end leaves the stream to close by END_STREAM both ways: it never resets it", async () => {
    const { open, close } = await h2c((stream) => {
      stream.once("data", () => stream.end("c"));
      stream.resume();
    });
    const app = await tcpServer(clientApp);
    try {
      const stream = await open();
      // What copy does to the stream while it is still open: destroy() or close() there would
      // put an RST_STREAM on the wire.
      const early: string[] = [];
      for (const method of ["destroy", "close"] as const) {
        const original = stream[method].bind(stream) as (...args: unknown[]) => unknown;
        (stream as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          if (!stream.closed) early.push(method);
          return original(...args);
        };
      }
      const closed = once(stream, "close");
      expect(await copyBidirectional(await connected(app), stream)).toEqual({});
      await closed;
      expect(early).toEqual([]);
      expect(stream.rstCode).toBe(h2constants.NGHTTP2_NO_ERROR);
    } finally {
      close();
    }
  });

  it("a reset app socket becomes RST_STREAM CANCEL on just that stream", async () => {
    const codes: number[] = [];
    const { session, open, close } = await h2c((stream) => {
      stream.resume();
      stream.once("close", () => codes.push(stream.rstCode));
    });
    const app = await tcpServer((s) => s.once("data", () => s.resetAndDestroy()));
    try {
      const stream = await open();
      const local = await connected(app);
      const copied = copyBidirectional(stream, local);
      local.write("x");
      expect((await copied).error).toMatchObject({ code: "ECONNRESET" });
      await vi.waitFor(() => expect(codes).toEqual([h2constants.NGHTTP2_CANCEL]));
      expect(session.destroyed || session.closed).toBe(false);
      // The session still carries new streams.
      const next = await open();
      next.close(h2constants.NGHTTP2_CANCEL);
    } finally {
      close();
    }
  });

  it("a side that is already gone finishes the copy at once (and resets the other)", async () => {
    const upstream = await tcpServer(() => {});
    const [a, b] = await Promise.all([connected(upstream), connected(upstream)]);
    a.destroy();
    await once(a, "close");
    await copyBidirectional(a, b);
    expect(b.destroyed).toBe(true);
  });
});

// The benchmark's connections-per-second test, through the real HBONE server and client pool
// (mutual TLS): each destroy() of a cleanly ended stream sent RST_STREAM, nghttp2 answered the
// 1001st-or-so with GOAWAY INTERNAL_ERROR, and every stream in flight on the session failed.
describe("copyBidirectional through HBONE (mTLS)", () => {
  it("4,000 short tunnels on one session: none fails, the session is never replaced", async () => {
    const root = await createTestRoot({ trustDomain: "cluster.local" });
    const ca = await root.toAuthority();
    const serverId = testIdentity("bench", "server");
    const serverCert: WorkloadCertificate = await ca.issueWorkloadCertificate(serverId);
    const clientCert: WorkloadCertificate = await ca.issueWorkloadCertificate(
      testIdentity("bench", "client"),
    );
    const appPort = await tcpServer(serverApp);
    const clientAppPort = await tcpServer(clientApp);
    const { logger } = createMemoryLogger("warn");
    const hbone: HboneServer = createHboneServer({
      certificate: () => serverCert,
      rootsPem: () => ca.rootCertsPem,
      trustDomain: "cluster.local",
      logger,
      onStream: (stream) => {
        // As proxy/inbound.ts does: connect the app, 200, copy.
        const app = connect({ port: appPort, host: "127.0.0.1", allowHalfOpen: true });
        app.on("error", () => {});
        app.once("connect", () => {
          if (respondStatus(stream, 200)) void copyBidirectional(stream, app);
          else app.destroy();
        });
      },
    });
    hbone.server.listen(0, "127.0.0.1");
    await once(hbone.server, "listening");
    const destination = { host: "127.0.0.1", port: (hbone.server.address() as { port: number }).port };
    const pool = new HboneClientPool();
    const failures = new Map<string, number>();
    const fail = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
    try {
      let left = 4000;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (left-- > 0) {
            try {
              const stream = await pool.connect({
                source: clientCert,
                rootsPem: ca.rootCertsPem,
                destination,
                expectedIdentities: [serverId.toString()],
                authority: "127.0.0.1:9000",
              });
              const { error } = await copyBidirectional(await connected(clientAppPort), stream);
              if (error) fail(`copy: ${error.message}`);
            } catch (err) {
              fail(`connect: ${(err as Error).message}`);
            }
          }
        }),
      );
      expect(Object.fromEntries(failures)).toEqual({});
      expect(pool.stats().sessions).toBe(1);
    } finally {
      pool.destroy();
      hbone.destroy();
    }
  }, 120_000);
});
