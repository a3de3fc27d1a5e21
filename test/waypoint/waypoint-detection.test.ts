// Protocol detection and the admin endpoints of a waypoint, on 127.44.x.y: a request split into
// several TCP segments is still HTTP (and policed as HTTP), so is an HTTP/2 preface sent in pieces;
// a server-first protocol gets through as opaque TCP once detection times out; opaque TCP is held
// to L4 policy; admin listens on localhost only and changes state on POST only.

import { once } from "node:events";
import { connect as h2connect } from "node:http2";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { createMemoryLogger } from "@ambient/core";
import { parseWaypointConfig, Waypoint, type Waypoint as WaypointProcess } from "@ambient/waypoint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { socksConnect } from "../utils/socks.js";

const CLIENT = "127.44.1.10";
const WEB = "web.demo.svc.cluster.local";
const BANNER_POD = "127.44.2.12";
const BANNER = "220 banner.demo ESMTP\r\n";
// Between the pieces of one request: far below the waypoint's 1 s detection timeout, far above
// what it takes loopback to deliver a piece as its own segment.
const PIECE_GAP_MS = 30;

let t: TestMesh;
let banner: Server;

beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.44.1.1"),
      node("node-b", "127.44.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({
        name: "web",
        namespace: "demo",
        node: "node-b",
        ip: "127.44.2.10",
        sa: "web",
        labels: { app: "web" },
        ports: [{ containerPort: 8080 }],
      }),
      pod({
        name: "mail",
        namespace: "demo",
        node: "node-b",
        ip: BANNER_POD,
        sa: "mail",
        labels: { app: "mail" },
      }),
      service({
        name: "web",
        namespace: "demo",
        vip: "127.44.100.1",
        selector: { app: "web" },
        ports: [{ port: 80, targetPort: 8080, name: "http" }],
      }),
      service({
        name: "mail",
        namespace: "demo",
        vip: "127.44.100.2",
        selector: { app: "mail" },
        ports: [{ port: 25, targetPort: 2525, name: "smtp" }],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.44.2.40 }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
    "20-policy.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: demo }
spec:
  targetRefs: [{ kind: Service, group: "", name: web }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`,
  });
  // A server-first app: it greets, then echoes.
  banner = createServer((s) => {
    s.on("error", () => {});
    s.write(BANNER);
    s.pipe(s);
  });
  banner.listen(2525, BANNER_POD);
  await once(banner, "listening");
}, 30_000);

afterAll(async () => {
  banner?.close();
  await t?.stop();
});

const pause = () => new Promise((r) => setTimeout(r, PIECE_GAP_MS));

async function tunnel(host: string, port: number): Promise<Socket> {
  const s = await socksConnect({ host: CLIENT, port: 15080 }, { host, port }, { localAddress: CLIENT });
  s.setNoDelay(true);
  s.on("error", () => {});
  // socksConnect hands the socket over paused.
  s.resume();
  return s;
}

/** Writes `pieces` one at a time, then reads everything until the other side is done. */
async function sendInPieces(pieces: string[]): Promise<string> {
  const s = await tunnel(WEB, 80);
  let got = "";
  s.on("data", (c: Buffer) => {
    got += c.toString("latin1");
  });
  const done = new Promise((r) => {
    s.once("end", r);
    s.once("close", r);
  });
  for (const piece of pieces) {
    s.write(piece);
    await pause();
  }
  await done;
  s.destroy();
  return got;
}

describe("protocol detection", () => {
  it("parses an HTTP/1.1 request split over several segments as HTTP, so L7 policy applies to it", async () => {
    const request = (path: string) => [
      "GE",
      `T ${path} HT`,
      "TP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n",
    ];
    await eventually(async () =>
      expect(await sendInPieces(request("/admin/users"))).toMatch(/^HTTP\/1\.1 403 /),
    );
    expect(await sendInPieces(request("/admin/users"))).toContain("RBAC: access denied");
    const allowed = await sendInPieces(request("/hello"));
    expect(allowed).toMatch(/^HTTP\/1\.1 200 /);
    expect(allowed).toContain('"path": "/hello"');
  });

  it("recognizes an HTTP/2 preface sent in pieces", async () => {
    const socket = await tunnel(WEB, 80);
    const session = h2connect(`http://${WEB}`, {
      createConnection: () => splitFirstWrite(socket, [3, 9, 16]),
    });
    session.on("error", () => {});
    const status = async (path: string) => {
      const stream = session.request({ ":path": path });
      stream.resume();
      const [headers] = (await once(stream, "response")) as [Record<string, unknown>];
      await once(stream, "end");
      return headers[":status"];
    };
    expect(await status("/admin/h2")).toBe(403);
    expect(logsWith(t.logs, { component: "access", path: "/admin/h2", protocol: "h2" })).toHaveLength(1);
    session.close();
  });

  it("lets a server-first protocol through as opaque TCP once detection times out", async () => {
    const s = await tunnel("mail.demo.svc.cluster.local", 25);
    let got = "";
    s.on("data", (c: Buffer) => {
      got += c.toString("latin1");
    });
    // The client says nothing until it is greeted, as SMTP, MySQL or SSH clients do.
    await eventually(() => expect(got).toBe(BANNER), 10_000);
    s.write("QUIT\r\n");
    await eventually(() => expect(got).toBe(`${BANNER}QUIT\r\n`));
    s.end();
  });

  it("holds opaque TCP to L4 policy: a DENY naming only HTTP paths denies every TCP connection", async () => {
    const s = await tunnel(WEB, 80);
    let got = "";
    s.on("data", (c: Buffer) => {
      got += c.toString("latin1");
    });
    // Reset (RST), as ztunnel passes on a refused tunnel: 'close' comes with or without an error.
    const closed = new Promise((r) => s.once("close", r));
    s.write("hello, not HTTP\n");
    await closed;
    expect(got).toBe("");
  });
});

describe("admin endpoints", () => {
  let w: WaypointProcess;
  const POD_IP = "127.44.9.40";

  beforeAll(async () => {
    // Started as in a cluster (admin on its default address), not as the local mesh starts them.
    w = await Waypoint.start(
      parseWaypointConfig(["--admin-port", "0", "--log-level", "info"], {
        GATEWAY_NAME: "admin-test",
        POD_NAMESPACE: "demo",
        INSTANCE_IP: POD_IP,
        XDS_ADDRESS: "127.0.0.1:1",
      }),
      // Nothing answers on 127.0.0.1:1: its xDS and CA retries are noise here.
      { logger: createMemoryLogger("info").logger },
    );
  });
  afterAll(async () => w?.stop());

  const admin = (path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${w.adminAddress()!.port}${path}`, init);

  it("listens on localhost only, never on the pod IP", async () => {
    expect(w.adminAddress()?.host).toBe("127.0.0.1");
    expect((await admin("/config_dump")).status).toBe(200);
    const refused = await new Promise<string>((resolve) => {
      const s = connect({ host: POD_IP, port: w.adminAddress()!.port });
      s.once("connect", () => resolve("connected"));
      s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
    // Metrics and readiness stay on the pod IP, for Prometheus and the kubelet.
    expect((await fetch(`http://${POD_IP}:15020/metrics`)).status).toBe(200);
  });

  it("changes state on POST only: GET /quitquitquit and GET /logging answer 405 and change nothing", async () => {
    const quit = await admin("/quitquitquit");
    expect([quit.status, quit.headers.get("allow")]).toEqual([405, "POST"]);
    const logging = await admin("/logging?level=debug");
    expect([logging.status, logging.headers.get("allow")]).toEqual([405, "POST"]);
    expect(await (await admin("/logging", { method: "POST" })).text()).toBe("current level: info\n");
    expect((await admin("/config_dump")).status).toBe(200);
    expect(await (await admin("/logging?level=warn", { method: "POST" })).text()).toBe("level set to warn\n");
  });
});

/** A socket whose first write (the HTTP/2 preface) leaves in pieces, cut at `cuts`. */
function splitFirstWrite(socket: Socket, cuts: number[]): Duplex {
  let first = true;
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (!first) {
        socket.write(chunk, callback);
        return;
      }
      first = false;
      void (async () => {
        let at = 0;
        for (const cut of [...cuts, chunk.length]) {
          socket.write(chunk.subarray(at, cut));
          at = cut;
          await pause();
        }
        callback();
      })();
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on("data", (c: Buffer) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on("end", () => d.push(null));
  return d;
}
