// HTTP/2 route timeouts and retries, and the DestinationRule connection-pool limits of the HTTP
// side, through a waypoint on 127.63.x.y: an h2c/gRPC request gets 504 UT past the route timeout
// and is retried per retryOn, attempts and perTryTimeout as HTTP/1.1 is; http2MaxRequests caps
// requests in flight (503 UO), maxRetries caps retries in flight, maxRequestsPerConnection caps
// requests per upstream connection for both protocols.

import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from "node:http";
import {
  type ClientHttp2Session,
  createServer as createH2Server,
  type Http2Server,
  connect as h2connect,
  type IncomingHttpHeaders,
} from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks, socksConnect } from "../utils/socks.js";

const CLIENT = "127.63.1.10";
const H2_APP = "127.63.2.10";
const H1_APP = "127.63.2.11";
const WAYPOINT = "127.63.2.40";
const H2_HOST = "h2.demo.svc.cluster.local";
const H1_HOST = "limits.demo.svc.cluster.local";

let t: TestMesh;
let h2App: Http2Server;
let h1App: HttpServer;
/** Attempts the apps saw, by x-key header. */
const attempts = new Map<string, number>();
let h2Sessions = 0;
/** HTTP/1.1 requests the app holds until the test lets them go. */
const held: ServerResponse[] = [];

function count(key: string): number {
  const n = (attempts.get(key) ?? 0) + 1;
  attempts.set(key, n);
  return n;
}

beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.63.1.1"),
      node("node-b", "127.63.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({ name: "h2", namespace: "demo", node: "node-b", ip: H2_APP, sa: "h2", labels: { app: "h2" } }),
      pod({
        name: "limits",
        namespace: "demo",
        node: "node-b",
        ip: H1_APP,
        sa: "limits",
        labels: { app: "limits" },
      }),
      service({
        name: "h2",
        namespace: "demo",
        vip: "127.63.100.1",
        selector: { app: "h2" },
        ports: [{ port: 80, targetPort: 8080, name: "grpc" }],
      }),
      service({
        name: "limits",
        namespace: "demo",
        vip: "127.63.100.2",
        selector: { app: "limits" },
        ports: [{ port: 80, targetPort: 8080, name: "http" }],
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
    "20-vs.yaml": docs(
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: h2, namespace: demo }
spec:
  hosts: [h2]
  http:
    - match: [{ uri: { prefix: /timeout } }]
      timeout: 200ms
      route: [{ destination: { host: h2 } }]
    - match: [{ uri: { prefix: /flaky } }]
      retries: { attempts: 2, retryOn: "503" }
      route: [{ destination: { host: h2 } }]
    - match: [{ uri: { prefix: /test.Echo/ } }]
      retries: { attempts: 2, retryOn: unavailable }
      route: [{ destination: { host: h2 } }]
    - match: [{ uri: { prefix: /slow-first } }]
      retries: { attempts: 2, perTryTimeout: 200ms, retryOn: 5xx }
      route: [{ destination: { host: h2 } }]
    - route: [{ destination: { host: h2 } }]
`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: limits, namespace: demo }
spec:
  hosts: [limits]
  http:
    - retries: { attempts: 3, retryOn: "503" }
      route: [{ destination: { host: limits } }]
`,
    ),
  });
  h2App = createH2Server();
  h2App.on("session", () => h2Sessions++);
  h2App.on("stream", (stream, headers: IncomingHttpHeaders) => {
    stream.on("error", () => {});
    stream.resume();
    const path = String(headers[":path"]);
    const n = count(String(headers["x-key"] ?? path));
    const answer = (status: number, body: string) => {
      if (stream.destroyed) return;
      stream.respond({ ":status": status });
      stream.end(body);
    };
    if (path.startsWith("/timeout")) setTimeout(() => answer(200, "late"), 1_000);
    else if (path.startsWith("/flaky")) answer(n === 1 ? 503 : 200, `attempt ${n}`);
    else if (path.startsWith("/slow-first"))
      setTimeout(() => answer(200, `attempt ${n}`), n === 1 ? 1_000 : 0);
    else if (path.startsWith("/test.Echo/")) {
      // gRPC: the first attempt is a trailers-only UNAVAILABLE, the next one succeeds.
      if (n === 1) {
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "grpc-status": "14" },
          { endStream: true },
        );
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x6f, 0x6b]));
    } else answer(200, path);
  });
  h2App.listen(8080, H2_APP);
  await once(h2App, "listening");
  h1App = createHttpServer((req, res) => {
    req.resume();
    const n = count(String(req.headers["x-key"] ?? req.url));
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    if (req.url?.startsWith("/hold")) held.push(res);
    else if (req.url?.startsWith("/retry") && n === 1) res.writeHead(503).end();
    else if (req.url?.startsWith("/retry")) held.push(res);
    else res.end(peer);
  });
  h1App.listen(8080, H1_APP);
  await once(h1App, "listening");
}, 30_000);

afterAll(async () => {
  for (const res of held.splice(0)) res.end();
  h1App?.closeAllConnections();
  h1App?.close();
  h2App?.close();
  await t?.stop();
});

async function h2Session(): Promise<ClientHttp2Session> {
  const socket = await socksConnect(
    { host: CLIENT, port: 15080 },
    { host: H2_HOST, port: 80 },
    { localAddress: CLIENT },
  );
  socket.on("error", () => {});
  const session = h2connect(`http://${H2_HOST}`, { createConnection: () => socket as never });
  session.on("error", () => {});
  return session;
}

interface H2Answer {
  status: number;
  body: Buffer;
  trailers: IncomingHttpHeaders;
}

function h2Request(
  session: ClientHttp2Session,
  path: string,
  headers: Record<string, string> = {},
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    let status = 0;
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.once("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.once("trailers", (h) => {
      trailers = h;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve({ status, body: Buffer.concat(chunks), trailers }));
    stream.once("error", reject);
    stream.end();
  });
}

function h1Get(path: string, key: string) {
  return httpViaSocks(CLIENT, { host: H1_HOST, port: 80, path, headers: { "x-key": key } });
}

async function configDump(): Promise<{ l7: { resources: { kind: string; name: string }[] } }> {
  return (await fetch(`http://${WAYPOINT}:15000/config_dump`)).json() as never;
}

/** Writes a DestinationRule and waits until the waypoint has it (each test names its own, so the
 * previous test's rule in the same file cannot pass for this one). */
async function destinationRule(file: string, name: string, host: string, http: string): Promise<void> {
  await t.config.write(
    file,
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: demo }
spec:
  host: ${host}
  trafficPolicy:
    connectionPool:
      http: ${http}
`,
  );
  await eventually(async () =>
    expect(
      (await configDump()).l7.resources.some((r) => r.kind === "DestinationRule" && r.name === name),
    ).toBe(true),
  );
}

describe("HTTP/2 and gRPC requests honour the route's timeout and retries", () => {
  let session: ClientHttp2Session;
  // The VirtualServices are in the mesh's initial files: in force once the mesh is up.
  beforeAll(async () => {
    session = await h2Session();
  });
  afterAll(() => session?.close());

  it("504 with flag UT past the route timeout", async () => {
    const res = await h2Request(session, "/timeout/slow");
    expect(res.status).toBe(504);
    expect(res.body.toString()).toBe("upstream request timeout");
    await eventually(() =>
      expect(logsWith(t.logs, { component: "access", path: "/timeout/slow", protocol: "h2" })).toMatchObject([
        { response_code: 504, response_flags: "UT" },
      ]),
    );
  });

  it("a retriable status is retried (retryOn, attempts)", async () => {
    const res = await h2Request(session, "/flaky", { "x-key": "h2-flaky" });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("attempt 2");
    expect(attempts.get("h2-flaky")).toBe(2);
  });

  it("gRPC: a trailers-only UNAVAILABLE is retried with retryOn unavailable; trailers are relayed", async () => {
    const res = await h2Request(session, "/test.Echo/Unary", {
      "content-type": "application/grpc",
      te: "trailers",
      "x-key": "grpc-unavailable",
    });
    expect(res.status).toBe(200);
    expect(res.trailers["grpc-status"]).toBe("0");
    expect(attempts.get("grpc-unavailable")).toBe(2);
    await eventually(() =>
      expect(
        logsWith(t.logs, { component: "access", path: "/test.Echo/Unary", protocol: "grpc" }),
      ).toMatchObject([{ response_code: 200, attempts: 2 }]),
    );
  });

  it("an attempt past perTryTimeout is abandoned and retried", async () => {
    const res = await h2Request(session, "/slow-first", { "x-key": "h2-slow-first" });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("attempt 2");
  });
});

describe("DestinationRule connectionPool.http", () => {
  it("http2MaxRequests: requests beyond it while the others are in flight get 503 UO", async () => {
    await destinationRule("30-dr-limits.yaml", "limits-max-requests", "limits", "{ http2MaxRequests: 2 }");
    const first = [h1Get("/hold/1", "hold-1"), h1Get("/hold/2", "hold-2")];
    await eventually(() => expect(held).toHaveLength(2));
    const third = await h1Get("/hold/3", "hold-3");
    expect(third.status).toBe(503);
    expect(attempts.get("hold-3")).toBeUndefined();
    for (const res of held.splice(0)) res.end("released");
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    await eventually(() =>
      expect(logsWith(t.logs, { component: "access", path: "/hold/3" })).toMatchObject([
        { response_code: 503, response_flags: "UO" },
      ]),
    );
    await t.config.remove("30-dr-limits.yaml");
  });

  it("maxRetries: a retry beyond the concurrent-retry budget is not made (the upstream's answer, flag UO)", async () => {
    await destinationRule("30-dr-limits.yaml", "limits-max-retries", "limits", "{ maxRetries: 1 }");
    // A's first attempt fails, its retry takes the one slot and waits at the app.
    const a = h1Get("/retry/a", "retry-a");
    await eventually(() => expect(held).toHaveLength(1));
    // B's first attempt fails too, and finds no retry slot.
    const b = await h1Get("/retry/b", "retry-b");
    expect(b.status).toBe(503);
    expect(attempts.get("retry-b")).toBe(1);
    for (const res of held.splice(0)) res.end("released");
    expect((await a).status).toBe(200);
    expect(attempts.get("retry-a")).toBe(2);
    await eventually(() =>
      expect(logsWith(t.logs, { component: "access", path: "/retry/b" })).toMatchObject([
        // Envoy flags a retry refused by the circuit breaker UO (retries run out: URX).
        { response_code: 503, attempts: 1, response_flags: "UO" },
      ]),
    );
    await t.config.remove("30-dr-limits.yaml");
  });

  it("maxRequestsPerConnection: an upstream connection carries at most that many requests, HTTP/1.1 and HTTP/2", async () => {
    await destinationRule(
      "30-dr-limits.yaml",
      "limits-per-connection",
      "limits",
      "{ maxRequestsPerConnection: 2 }",
    );
    await destinationRule("31-dr-h2.yaml", "h2-per-connection", "h2", "{ maxRequestsPerConnection: 2 }");
    const peers: string[] = [];
    for (let i = 0; i < 4; i++) peers.push((await h1Get(`/peer/${i}`, `peer-${i}`)).body);
    expect(new Set(peers).size).toBe(2);
    expect(peers[0]).toBe(peers[1]);
    expect(peers[2]).toBe(peers[3]);

    const session = await h2Session();
    try {
      const before = h2Sessions;
      for (let i = 0; i < 4; i++) expect((await h2Request(session, `/count/${i}`)).status).toBe(200);
      expect(h2Sessions - before).toBe(2);
    } finally {
      session.close();
    }
    await t.config.remove("30-dr-limits.yaml");
    await t.config.remove("31-dr-h2.yaml");
  });
});
