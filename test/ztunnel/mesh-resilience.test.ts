// Data integrity and resilience on 127.23.x.y, with the control plane run by hand so it can be
// stopped: half-close both ways and a 10 MB transfer through two ztunnels; the CA/control plane
// going away (open and new connections keep working on valid certificates) and coming back
// (ztunnel resyncs); the admin endpoints; drain on shutdown.

import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { ControlPlane, LocalTokenAuthenticator } from "@ambient/controlplane";
import { createMemoryLogger } from "@ambient/core";
import { parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, type TempDir, tempDir } from "../utils/index.js";
import { logsWith } from "../utils/mesh.js";
import { httpGetViaSocks, socksConnect } from "../utils/socks.js";

const CLIENT = "127.23.1.10";
const APP = "127.23.2.10";
const NODES = { "node-a": "127.23.1.1", "node-b": "127.23.2.1" } as const;

const MESH = docs(
  namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
  node("node-a", NODES["node-a"]),
  node("node-b", NODES["node-b"]),
  pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
  pod({ name: "app", namespace: "demo", node: "node-b", ip: APP, sa: "app", labels: { app: "app" } }),
);

let config: TempDir;
let state: TempDir;
let cp: ControlPlane;
let cpPort = 0;
const ztunnels: Ztunnel[] = [];
const { logger, records: logs } = createMemoryLogger("debug");
let app: Server;
/** Per connection, what the app read (hex sha256) once the client half-closed. */
const appBehaviour: { mode: "echo" | "hash" | "close-first" } = { mode: "echo" };

async function startControlPlane(port: number): Promise<ControlPlane> {
  return ControlPlane.start({
    configDir: config.path,
    listen: { host: "127.0.0.1", port },
    stateDir: state.path,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger,
  });
}

beforeAll(async () => {
  config = await tempDir();
  state = await tempDir();
  await config.write("mesh.yaml", MESH);
  cp = await startControlPlane(0);
  cpPort = Number(cp.address.split(":")[1]);
  for (const [name, ip] of Object.entries(NODES)) {
    const cfg = parseZtunnelConfig(["--admin-on-node-ip"], {
      NODE_NAME: name,
      NODE_IP: ip,
      XDS_ADDRESS: cp.address,
      AMBIENT_NODE_TOKEN_FILE: LocalTokenAuthenticator.tokenPath(state.path, name),
    });
    ztunnels.push(await Ztunnel.start(cfg, { logger }));
  }
  // The app on 127.23.2.10:7000: echo, hash-then-answer, or close its side first.
  app = createServer({ allowHalfOpen: true }, (s: Socket) => {
    if (appBehaviour.mode === "echo") return void s.pipe(s);
    if (appBehaviour.mode === "close-first") {
      s.end("server-done");
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("end", () => {
        lastFromClient = Buffer.concat(chunks).toString();
      });
      return;
    }
    const h = createHash("sha256");
    let n = 0;
    s.on("data", (c: Buffer) => {
      h.update(c);
      n += c.length;
    });
    s.on("end", () => s.end(`${n} ${h.digest("hex")}`));
  });
  app.listen(7000, APP);
  await once(app, "listening");
  await eventually(() => {
    for (const z of ztunnels) expect(z.readiness()).toEqual({ ready: true, reasons: [] });
  }, 15_000);
}, 30_000);

let lastFromClient = "";

afterAll(async () => {
  for (const z of ztunnels) await z.stop();
  await cp?.stop();
  app?.close();
  await config?.cleanup();
  await state?.cleanup();
});

function open(): Promise<Socket> {
  return socksConnect({ host: CLIENT, port: 15080 }, { host: APP, port: 7000 }, { localAddress: CLIENT });
}

function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks)));
    s.once("error", reject);
    s.resume();
  });
}

describe("bytes through two ztunnels", () => {
  it("a 10 MB transfer arrives intact (and the client's half-close reaches the app)", async () => {
    appBehaviour.mode = "hash";
    const data = randomBytes(10 * 1024 * 1024);
    const s = await open();
    const answer = readAll(s);
    s.end(data);
    expect((await answer).toString()).toBe(
      `${data.length} ${createHash("sha256").update(data).digest("hex")}`,
    );
  });

  it("echoes 10 MB back intact", async () => {
    appBehaviour.mode = "echo";
    const data = randomBytes(10 * 1024 * 1024);
    const s = await open();
    const back = readAll(s);
    s.end(data);
    expect(
      createHash("sha256")
        .update(await back)
        .digest("hex"),
    ).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("server half-close: the app ends first and still receives what the client sends after", async () => {
    appBehaviour.mode = "close-first";
    lastFromClient = "";
    const s = await open();
    expect((await readAll(s)).toString()).toBe("server-done");
    s.end("client-after-server-end");
    await eventually(() => expect(lastFromClient).toBe("client-after-server-end"));
    appBehaviour.mode = "echo";
  });
});

describe("telemetry and admin", () => {
  it("writes one access-log line per connection with the documented fields", async () => {
    const s = await open();
    const back = readAll(s);
    s.end("hello");
    await back;
    await eventually(() => {
      const line = logsWith(logs, { direction: "inbound", "dst.workload": "app" }).at(-1)!;
      expect(line).toMatchObject({
        "src.addr": expect.stringMatching(/^127\.23\.1\.10:\d+$/),
        "src.workload": "client",
        "src.namespace": "demo",
        "src.identity": "spiffe://cluster.local/ns/demo/sa/client",
        "dst.addr": "127.23.2.10:7000",
        "dst.hbone_addr": "127.23.2.10:15008",
        "dst.namespace": "demo",
        "dst.identity": "spiffe://cluster.local/ns/demo/sa/app",
        bytes_sent: 5,
        bytes_recv: 5,
      });
      expect(typeof line["duration"]).toBe("number");
      const outbound = logsWith(logs, { direction: "outbound", "dst.workload": "app" }).at(-1)!;
      expect(outbound).toMatchObject({
        "src.identity": "spiffe://cluster.local/ns/demo/sa/client",
        bytes_sent: 5,
        bytes_recv: 5,
      });
    });
  });

  it("serves /config_dump, /healthz/ready and /logging", async () => {
    const dump = (await (await fetch(`http://${NODES["node-b"]}:15000/config_dump`)).json()) as {
      workloads: { name: string }[];
      certificates: { identity: string; state: string; serial: string; notAfter: string }[];
      policies: unknown[];
      services: unknown[];
    };
    expect(dump.workloads.map((w) => w.name).sort()).toEqual(["app", "client"]);
    expect(dump.certificates).toEqual([
      expect.objectContaining({
        identity: "spiffe://cluster.local/ns/demo/sa/app",
        state: "available",
        serial: expect.any(String),
        notAfter: expect.any(String),
      }),
    ]);
    expect((await fetch(`http://${NODES["node-b"]}:15021/healthz/ready`)).status).toBe(200);
    const set = await fetch(`http://${NODES["node-b"]}:15000/logging?level=warn`, { method: "POST" });
    expect(await set.text()).toBe("level set to warn\n");
    const bad = await fetch(`http://${NODES["node-b"]}:15000/logging?level=loud`, { method: "POST" });
    expect(bad.status).toBe(400);
    await fetch(`http://${NODES["node-b"]}:15000/logging?level=debug`, { method: "POST" });
    // State changes need POST: a GET (a link, a crawler) is refused and changes nothing.
    for (const path of ["/logging?level=error", "/logging", "/quitquitquit"]) {
      const get = await fetch(`http://${NODES["node-b"]}:15000${path}`);
      expect([path, get.status, get.headers.get("allow")]).toEqual([path, 405, "POST"]);
    }
    const level = await fetch(`http://${NODES["node-b"]}:15000/logging`, { method: "POST" });
    expect(await level.text()).toBe("current level: debug\n");
    expect((await fetch(`http://${NODES["node-b"]}:15021/healthz/ready`)).status).toBe(200);
  });
});

describe("the control plane and CA going away", () => {
  it("keeps open and new connections working on valid certificates, then resyncs when it returns", async () => {
    appBehaviour.mode = "echo";
    const longLived = await open();
    await cp.stop();

    // Open connection still flows; new ones work (xDS state and certificates are kept).
    longLived.resume();
    longLived.write("still-open\n");
    const [echo] = (await once(longLived, "data")) as [Buffer];
    expect(echo.toString()).toBe("still-open\n");
    const fresh = await open();
    const back = readAll(fresh);
    fresh.end("new-while-down");
    expect((await back).toString()).toBe("new-while-down");
    longLived.destroy();

    // Change the folder while the control plane is away, then bring it back on the same port.
    await config.write(
      "extra.yaml",
      pod({ name: "late", namespace: "demo", node: "node-a", ip: "127.23.1.20", sa: "late" }),
    );
    cp = await startControlPlane(cpPort);
    await eventually(
      () => expect(ztunnels[0]!.state.workloadByUid("Kubernetes//Pod/demo/late")).toBeDefined(),
      15_000,
    );
    // The new pod on node-a gets a certificate from the returned CA.
    await eventually(
      () => expect(ztunnels[0]!.certs.get("spiffe://cluster.local/ns/demo/sa/late")).toBeDefined(),
      15_000,
    );
    expect((await httpGetViaSocks(CLIENT, APP, 7000).catch(() => ({ status: 0 }))).status).toBeDefined();
  });
});

describe("drain", () => {
  it("stops accepting, lets an open connection finish, and reports it drained", async () => {
    const z = ztunnels[1]!;
    const s = await open();
    s.resume();
    s.write("before-drain\n");
    await once(s, "data");
    const draining = z.drainAndStop(5_000);
    // The open connection keeps working during the drain...
    await eventually(() => expect(z.readiness().ready).toBe(false));
    s.write("during-drain\n");
    const [during] = (await once(s, "data")) as [Buffer];
    expect(during.toString()).toBe("during-drain\n");
    // ...and once it ends, the drain completes without forcing anything.
    s.end();
    expect(await draining).toEqual({ drained: 1, forced: 0 });
  });
});
