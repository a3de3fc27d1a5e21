// The waypoint's request path after idle pauses, on 127.61.x.y: apps that close idle keep-alive
// connections (HTTP/1.1) or idle sessions (HTTP/2, as gRPC servers do with GOAWAY) must never
// leave a request hanging, and every connection ztunnel opened for them must be closed again.

import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import {
  type ClientHttp2Session,
  createServer as createH2Server,
  type Http2Server,
  connect as h2connect,
} from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks, socksConnect } from "../utils/socks.js";

const CLIENT = "127.61.1.10";
const H1_APP = "127.61.2.10";
const H2_APP = "127.61.2.11";
const H1_HOST = "idle.demo.svc.cluster.local";
const H2_HOST = "idle-h2.demo.svc.cluster.local";
/**
 * The apps close idle connections after this (plus the 1 s node:http adds): Node's own default is
 * 5 s, shortened to keep the test fast.
 */
const APP_IDLE_MS = 100;

let t: TestMesh;
let h1App: HttpServer;
let h2App: Http2Server;
let h2SessionsOpened = 0;
let h2SessionsClosed = 0;

beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.61.1.1"),
      node("node-b", "127.61.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      // No container ports: the local mesh starts no echo server there; the test's apps listen instead.
      pod({
        name: "idle",
        namespace: "demo",
        node: "node-b",
        ip: H1_APP,
        sa: "idle",
        labels: { app: "idle" },
      }),
      pod({
        name: "idle-h2",
        namespace: "demo",
        node: "node-b",
        ip: H2_APP,
        sa: "idle",
        labels: { app: "idle-h2" },
      }),
      service({
        name: "idle",
        namespace: "demo",
        vip: "127.61.100.1",
        selector: { app: "idle" },
        ports: [{ port: 80, targetPort: 8080, name: "http" }],
      }),
      service({
        name: "idle-h2",
        namespace: "demo",
        vip: "127.61.100.2",
        selector: { app: "idle-h2" },
        ports: [{ port: 80, targetPort: 8080, name: "http2" }],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.61.2.40 }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
  });
  h1App = createHttpServer({ keepAliveTimeout: APP_IDLE_MS }, (req, res) => {
    req.resume();
    // Set explicitly, so Node adds no "Keep-Alive: timeout=" hint: like Go or Java servers, the app
    // closes idle connections without announcing when, and the waypoint must notice on its own.
    res.setHeader("connection", "keep-alive");
    res.end(JSON.stringify({ path: req.url, peer: `${req.socket.remoteAddress}:${req.socket.remotePort}` }));
  });
  h1App.listen(8080, H1_APP);
  await once(h1App, "listening");
  // HTTP/2 prior knowledge (gRPC-style): the app ends an idle session with GOAWAY, then closes it.
  h2App = createH2Server();
  h2App.on("session", (session) => {
    h2SessionsOpened++;
    session.setTimeout(APP_IDLE_MS, () => session.close());
    session.once("close", () => h2SessionsClosed++);
  });
  h2App.on("stream", (stream, headers) => {
    stream.respond({ ":status": 200, "content-type": "application/json" });
    stream.end(JSON.stringify({ path: headers[":path"] }));
  });
  h2App.listen(8080, H2_APP);
  await once(h2App, "listening");
}, 30_000);

afterAll(async () => {
  h1App?.closeAllConnections();
  h1App?.close();
  h2App?.close();
  await t?.stop();
});

function openConnections(nodeName: string): number {
  const dump = t.mesh.nodes.get(nodeName)!.ztunnel.configDump() as { connections: { open: number } };
  return dump.connections.open;
}

/** Fails the test instead of hanging it: the bug this file guards against is a request that never ends. */
function withDeadline<T>(what: string, p: Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

function getH1(path: string) {
  return withDeadline(`GET ${path}`, httpViaSocks(CLIENT, { host: H1_HOST, port: 80, path }));
}

async function appConnections(server: HttpServer): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

describe("after the app closed an idle upstream connection", () => {
  it("HTTP/1.1: the next requests are answered, and ztunnel's connections return to their baseline", async () => {
    const baseline = { a: openConnections("node-a"), b: openConnections("node-b") };
    await eventually(async () => expect((await getH1("/warmup")).status).toBe(200), 10_000);
    await eventually(async () => expect(await appConnections(h1App)).toBe(0));

    const peers = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await getH1(`/before-${i}`);
      expect(res.status).toBe(200);
      peers.add(res.json<{ peer: string }>().peer);
    }
    // Keep-alive toward the app still works: one connection carried all three.
    expect(peers.size).toBe(1);
    // The app's keep-alive timeout ends the pooled connection: wait for that, not for a fixed time.
    await eventually(async () => expect(await appConnections(h1App)).toBe(0));
    for (let i = 0; i < 3; i++) expect((await getH1(`/after-${i}`)).status).toBe(200);
    // The closed connection had left the pool: the first request after the pause needed no resend.
    const after = logsWith(t.logs, { component: "access", path: "/after-0" });
    expect(after.map((l) => [l.response_code, l.attempts, l.response_flags])).toEqual([[200, 1, "-"]]);

    // Every connection ztunnel opened for these requests is closed and counted closed: the app's
    // side of a pooled connection no longer sits in CLOSE-WAIT behind a stream the waypoint keeps.
    await eventually(async () => expect(await appConnections(h1App)).toBe(0));
    await eventually(() => {
      expect(openConnections("node-a")).toBe(baseline.a);
      expect(openConnections("node-b")).toBe(baseline.b);
    });
  });

  it("HTTP/2: requests after the app's GOAWAY on an idle session are answered", async () => {
    const socket = await socksConnect(
      { host: CLIENT, port: 15080 },
      { host: H2_HOST, port: 80 },
      { localAddress: CLIENT },
    );
    socket.on("error", () => {});
    const session: ClientHttp2Session = h2connect(`http://${H2_HOST}`, {
      createConnection: () => socket as never,
    });
    session.on("error", () => {});
    socket.resume();
    const get = (path: string) =>
      withDeadline(
        `h2 GET ${path}`,
        new Promise<number>((resolve, reject) => {
          const s = session.request({ ":path": path });
          s.once("response", (h) => resolve(Number(h[":status"])));
          s.once("error", reject);
          s.resume();
        }),
      );
    try {
      const opened = h2SessionsOpened;
      for (let i = 0; i < 3; i++) expect(await get(`/before-${i}`)).toBe(200);
      // The waypoint pools its HTTP/2 sessions to the app: one carried all three requests.
      expect(h2SessionsOpened - opened).toBe(1);
      const closed = h2SessionsClosed;
      await eventually(() => expect(h2SessionsClosed).toBeGreaterThan(closed));
      for (let i = 0; i < 3; i++) expect(await get(`/after-${i}`)).toBe(200);
      // The session the app ended left the pool: a new one, and no request needed a second try.
      expect(h2SessionsOpened - opened).toBe(2);
      const after = logsWith(t.logs, { component: "access", path: "/after-0", protocol: "h2" });
      expect(after.map((l) => [l.response_code, l.attempts, l.response_flags])).toEqual([[200, 1, "-"]]);
    } finally {
      session.close();
    }
  });
});
