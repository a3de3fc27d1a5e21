import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { serveHttp1 } from "./serve-http1.js";
import { info, stagesTo, testContext } from "./testing.js";
import type { RequestBounds } from "./timeouts.js";

// The waypoint's HTTP/1.1 side on real sockets: a TCP connection stands in for the HBONE stream,
// a test server on 127.0.0.1 for the app. Bounds are shortened; what is checked is that each phase
// ends with the right answer instead of waiting forever.
describe("serveHttp1 bounds every phase", () => {
  let app: HttpServer;
  let front: Server;
  let setup: ReturnType<typeof testContext> | undefined;
  const clients: Socket[] = [];

  beforeEach(async () => {
    app = createHttpServer((req, res) => {
      // /never: the app takes the request and never answers.
      if (req.url === "/never") return;
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    app.listen(0, "127.0.0.1");
    await once(app, "listening");
  });

  afterEach(async () => {
    for (const c of clients) c.destroy();
    setup?.close();
    front?.close();
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  });

  async function waypoint(bounds: Partial<RequestBounds>): Promise<Socket> {
    const port = (app.address() as AddressInfo).port;
    setup = testContext(stagesTo(port), bounds);
    const ctx = setup.ctx;
    front = createServer({ allowHalfOpen: true }, (tunnel) => serveHttp1(ctx, info, tunnel));
    front.listen(0, "127.0.0.1");
    await once(front, "listening");
    const client = connect({ port: (front.address() as AddressInfo).port, host: "127.0.0.1" });
    clients.push(client);
    await once(client, "connect");
    return client;
  }

  function received(client: Socket): Promise<string> {
    return new Promise((resolve) => {
      let text = "";
      client.on("data", (c: Buffer) => {
        text += c.toString();
      });
      client.once("close", () => resolve(text));
    });
  }

  it("answers 408 and closes when request headers trickle in past the request-headers bound", async () => {
    const client = await waypoint({ requestHeadersMs: 300 });
    const text = received(client);
    client.write("GET / HTTP/1.1\r\n");
    // A header line every 50 ms: never idle, never complete.
    const trickle = setInterval(() => client.write("X-Slow: 1\r\n"), 50);
    try {
      expect(await text).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
    }
    expect(setup!.access()).toMatchObject([{ response_code: 408 }]);
  });

  it("answers 504 SI when the upstream never answers within the stream idle bound", async () => {
    const client = await waypoint({ streamIdleMs: 300 });
    const text = received(client);
    client.end("GET /never HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
    const answer = await text;
    expect(answer).toMatch(/^HTTP\/1\.1 504 /);
    expect(answer).toContain("stream timeout");
    expect(setup!.access()).toMatchObject([{ path: "/never", response_code: 504, response_flags: "SI" }]);
  });

  it("answers 408 SI when the client stops sending its body", async () => {
    const client = await waypoint({ streamIdleMs: 300 });
    const text = received(client);
    client.write("POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 10\r\n\r\nabc");
    expect(await text).toMatch(/^HTTP\/1\.1 408 /);
    expect(setup!.access()).toMatchObject([{ path: "/upload", response_code: 408, response_flags: "SI" }]);
  });

  it("closes a keep-alive connection idle past the downstream idle bound", async () => {
    const client = await waypoint({ downstreamIdleMs: 100 });
    const text = received(client);
    client.write("GET /first HTTP/1.1\r\nHost: app\r\n\r\n");
    // node:http adds 1 s to its keep-alive timeout before it closes.
    expect(await text).toMatch(/^HTTP\/1\.1 200 /);
  });
});
