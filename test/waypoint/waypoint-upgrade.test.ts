// Upgrade and CONNECT requests through a waypoint on 127.62.x.y take every L7 stage a plain request
// takes: a DENY policy answers 403 whatever the Connection header says, an allowed WebSocket goes
// through routing (its response header edits included) and is counted once with response code
// 101, a refused upgrade leaves the connection HTTP so the next request on it is policed too, and
// CONNECT (HTTP/1.1, HTTP/2, extended) is refused.

import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect as h2connect } from "node:http2";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, metricValue, startMesh, type TestMesh } from "../utils/mesh.js";
import { socksConnect } from "../utils/socks.js";

const CLIENT = "127.62.1.10";
const APP = "127.62.2.10";
const WAYPOINT = "127.62.2.40";
const HOST = "upgrade.demo.svc.cluster.local";
const HTTP_PORT = 80;
const WS_PORT = 81;

let t: TestMesh;
/** Answers every request normally (node:http without an 'upgrade' listener ignores Upgrade). */
let plainApp: HttpServer;
/** Accepts WebSocket upgrades and echoes the frames back. */
let wsApp: HttpServer;
const appSaw: string[] = [];

beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.62.1.1"),
      node("node-b", "127.62.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({
        name: "upgrade",
        namespace: "demo",
        node: "node-b",
        ip: APP,
        sa: "upgrade",
        labels: { app: "upgrade" },
      }),
      service({
        name: "upgrade",
        namespace: "demo",
        vip: "127.62.100.1",
        selector: { app: "upgrade" },
        ports: [
          { port: HTTP_PORT, targetPort: 8080, name: "http" },
          { port: WS_PORT, targetPort: 8081, name: "http-ws" },
        ],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: ${WAYPOINT} }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
    "20-policy.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-delete, namespace: demo }
spec:
  targetRefs: [{ kind: Service, group: "", name: upgrade }]
  action: DENY
  rules: [{ to: [{ operation: { methods: ["DELETE"] } }] }]
`,
    "30-vs.yaml": `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: upgrade, namespace: demo }
spec:
  hosts: [upgrade]
  http:
    - name: all
      headers: { response: { set: { x-routed-by: waypoint } } }
      route: [{ destination: { host: upgrade } }]
`,
  });
  plainApp = createHttpServer((req, res) => {
    appSaw.push(`${req.method} ${req.url}`);
    req.resume();
    res.end(`${req.method} ${req.url}`);
  });
  plainApp.listen(8080, APP);
  await once(plainApp, "listening");
  wsApp = createHttpServer((_req, res) => res.end("not an upgrade"));
  wsApp.on("upgrade", (req, socket) => {
    socket.on("error", () => {});
    const accept = createHash("sha1")
      .update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.pipe(socket);
  });
  wsApp.listen(8081, APP);
  await once(wsApp, "listening");
  // Policy and routes in force before the first test.
  await eventually(async () => {
    const s = await open(HTTP_PORT);
    s.write(`DELETE /ready HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    expect((await readResponses(s, 1))[0]!.status).toBe(403);
    s.destroy();
  }, 10_000);
}, 30_000);

afterAll(async () => {
  plainApp?.closeAllConnections();
  plainApp?.close();
  wsApp?.close();
  await t?.stop();
});

async function open(port: number): Promise<Socket> {
  const s = await socksConnect({ host: CLIENT, port: 15080 }, { host: HOST, port }, { localAddress: CLIENT });
  s.on("error", () => {});
  return s;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Reads `count` HTTP/1.1 responses (Content-Length framed, or a 101 head) off a socket. */
function readResponses(s: Socket, count: number): Promise<Parsed[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: Parsed[] = [];
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const [statusLine, ...lines] = buf.subarray(0, end).toString("latin1").split("\r\n");
        const headers: Record<string, string> = {};
        for (const l of lines)
          headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
        const status = Number(statusLine!.split(" ")[1]);
        const length = status === 101 ? 0 : Number(headers["content-length"] ?? 0);
        if (buf.length < end + 4 + length) return;
        out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + length).toString() });
        buf = buf.subarray(end + 4 + length);
        if (out.length === count) {
          s.removeListener("data", onData);
          if (buf.length > 0) s.unshift(buf);
          resolve(out);
          return;
        }
      }
    };
    s.on("data", onData);
    s.once("close", () => reject(new Error(`connection closed after ${out.length} of ${count} responses`)));
    s.resume();
  });
}

const upgradeHeaders = (key = randomBytes(16).toString("base64")) =>
  `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;

describe("Upgrade requests take every L7 stage", () => {
  it("a DENY policy for DELETE answers 403 with and without Connection: Upgrade", async () => {
    for (const extra of ["", upgradeHeaders()]) {
      const s = await open(HTTP_PORT);
      s.write(`DELETE /items/1 HTTP/1.1\r\nHost: ${HOST}\r\n${extra}Content-Length: 0\r\n\r\n`);
      const [res] = await readResponses(s, 1);
      expect(res!.status).toBe(403);
      expect(res!.body).toBe("RBAC: access denied");
      s.destroy();
    }
    expect(appSaw.filter((r) => r.startsWith("DELETE /items"))).toEqual([]);
  });

  it("an allowed WebSocket is routed, switches on the app's 101, and is counted once with code 101", async () => {
    const s = await open(WS_PORT);
    s.write(`GET /chat HTTP/1.1\r\nHost: ${HOST}:${WS_PORT}\r\n${upgradeHeaders()}\r\n`);
    const [res] = await readResponses(s, 1);
    expect(res!.status).toBe(101);
    expect(res!.headers.upgrade).toBe("websocket");
    // The route's response header edit applies to the 101 as to any answer.
    expect(res!.headers["x-routed-by"]).toBe("waypoint");
    const frame = Buffer.from([0x81, 0x05, ...Buffer.from("hello")]);
    s.write(frame);
    const [echo] = await once(s, "data");
    expect(echo).toEqual(frame);
    s.end();
    await eventually(() => {
      const [log] = logsWith(t.logs, { component: "access", path: "/chat", response_code: 101 });
      expect(log).toMatchObject({ upgraded: true, bytes_recv: frame.length, bytes_sent: frame.length });
    });
    const metrics = await (await fetch(`http://${WAYPOINT}:15020/metrics`)).text();
    expect(metricValue(metrics, "istio_requests_total", { reporter: "waypoint", response_code: "101" })).toBe(
      1,
    );
  });

  it("after a non-101 answer the connection stays HTTP: the next request, keep-alive or pipelined, is policed", async () => {
    // Keep-alive: the app ignores the upgrade and answers 200; the DELETE after it meets the policy.
    const s = await open(HTTP_PORT);
    s.write(`GET /maybe-upgrade HTTP/1.1\r\nHost: ${HOST}\r\n${upgradeHeaders()}\r\n`);
    const [first] = await readResponses(s, 1);
    expect(first).toMatchObject({ status: 200, body: "GET /maybe-upgrade" });
    s.write(`DELETE /items/2 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`);
    const [second] = await readResponses(s, 1);
    expect(second!.status).toBe(403);
    s.destroy();

    // Pipelined: both requests in one write, before any answer.
    const p = await open(HTTP_PORT);
    p.write(
      `GET /maybe-upgrade-2 HTTP/1.1\r\nHost: ${HOST}\r\n${upgradeHeaders()}\r\n` +
        `DELETE /items/3 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`,
    );
    const answers = await readResponses(p, 2);
    expect(answers.map((a) => a.status)).toEqual([200, 403]);
    p.destroy();
    expect(appSaw.filter((r) => r.startsWith("DELETE /items"))).toEqual([]);
  });

  it("an h2c upgrade is dropped and the request served as HTTP/1.1 (no raw HTTP/2 past the L7 stages)", async () => {
    // This app switches to whatever protocol is asked for: had the upgrade gone through, the
    // client's HTTP/2 requests would flow as raw bytes that no policy sees.
    const s = await open(WS_PORT);
    s.write(
      `GET /h2c HTTP/1.1\r\nHost: ${HOST}:${WS_PORT}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 0\r\n\r\n`,
    );
    const [res] = await readResponses(s, 1);
    expect(res).toMatchObject({ status: 200, body: "not an upgrade" });
    s.destroy();
  });
});

describe("an Upgrade request with a body", () => {
  it("is refused with 400 (where its body ends and the new protocol starts is ambiguous)", async () => {
    const s = await open(WS_PORT);
    s.write(
      `POST /upload HTTP/1.1\r\nHost: ${HOST}:${WS_PORT}\r\n${upgradeHeaders()}Content-Length: 5\r\n\r\nhello`,
    );
    const [res] = await readResponses(s, 1);
    expect(res!.status).toBe(400);
    await once(s, "end");
    s.destroy();
    await eventually(() =>
      expect(
        logsWith(t.logs, { component: "access", path: "/upload", response_code: 400, response_flags: "DPE" }),
      ).toHaveLength(1),
    );
  });
});

describe("an Upgrade request whose body is another request", () => {
  it("answers 400 once and closes: the body is never parsed as a next request (no smuggling)", async () => {
    const s = await open(WS_PORT);
    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${HOST}:${WS_PORT}\r\n\r\n`;
    const received: Buffer[] = [];
    s.on("data", (c: Buffer) => received.push(c));
    s.resume();
    const ended = once(s, "end");
    s.write(
      `POST /carrier HTTP/1.1\r\nHost: ${HOST}:${WS_PORT}\r\n${upgradeHeaders()}Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    );
    await ended;
    s.destroy();
    const text = Buffer.concat(received).toString("latin1");
    // One answer, the refusal, and then the connection ends: nothing answered /smuggled.
    expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 400"]);
    expect(text.toLowerCase()).toContain("connection: close");
    await eventually(() =>
      expect(
        logsWith(t.logs, {
          component: "access",
          path: "/carrier",
          response_code: 400,
          response_flags: "DPE",
        }),
      ).toHaveLength(1),
    );
    expect(logsWith(t.logs, { component: "access", path: "/smuggled" })).toHaveLength(0);
  });
});

describe("CONNECT is refused", () => {
  it("HTTP/1.1 CONNECT gets 403 and the connection closes", async () => {
    const s = await open(HTTP_PORT);
    s.write(`CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n`);
    const [res] = await readResponses(s, 1);
    expect(res!.status).toBe(403);
    await once(s, "end");
    s.destroy();
    await eventually(() =>
      expect(
        logsWith(t.logs, { component: "access", method: "CONNECT", response_code: 403 }).length,
      ).toBeGreaterThan(0),
    );
  });

  it("HTTP/2: extended CONNECT is not offered, and a plain CONNECT gets 403", async () => {
    const socket = await open(HTTP_PORT);
    const session = h2connect(`http://${HOST}`, { createConnection: () => socket as never });
    session.on("error", () => {});
    await once(session, "remoteSettings");
    // RFC 8441 §3: without SETTINGS_ENABLE_CONNECT_PROTOCOL a client must not send :protocol.
    expect(session.remoteSettings.enableConnectProtocol).toBe(false);
    const stream = session.request({ ":method": "CONNECT", ":authority": "10.0.0.1:443" });
    stream.on("error", () => {});
    const [headers] = await once(stream, "response");
    expect(headers[":status"]).toBe(403);
    stream.resume();
    session.close();
  });
});
