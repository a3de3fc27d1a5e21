import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
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
    await new Promise((r) => setTimeout(r, 50));
    expect(await received).toBe("still here");
  });
});
