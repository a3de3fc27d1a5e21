// Adversarial clients against ztunnel's per-pod listeners, on 127.41.x.y: a raw HTTP/2 client (with a
// valid workload certificate) floods resets, opens streams past the limit, sends endless
// CONTINUATION, oversized header blocks and garbage; other clients stall in the TLS or SOCKS5
// handshake. After each: the process still serves a good client, memory stays bounded, and the case
// is logged once with its code. And 15008 is never an open proxy.

import { once } from "node:events";
import { createServer, type Server, Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { LocalTokenAuthenticator } from "@ambient/controlplane";
import { createMemoryLogger, SpiffeId, type WorkloadCertificate } from "@ambient/core";
import { LocalSocketFactory, type PodRef, parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, Flag, FrameType, RawH2 } from "../utils/h2-raw.js";
import { encodeHeaders } from "../utils/hpack.js";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  service,
  startControlPlane,
} from "../utils/index.js";
import { logsWith } from "../utils/mesh.js";
import { socksConnect } from "../utils/socks.js";

const NODES = { "node-a": "127.41.1.1", "node-b": "127.41.2.1" } as const;
const CLIENT = "127.41.1.10";
const WEB = "127.41.2.10";
/** On node-a: "another node's pod" as node-b sees it. */
const OTHER = "127.41.1.20";
/** On node-b: an app whose connects never complete (a SYN black hole), standing in below. */
const SLOW = "127.41.2.20";
const SLOW_PORT = 9999;
const APP_PORT = 8080;
const WEB_ID = "spiffe://cluster.local/ns/demo/sa/web";
/** Short, so stalled clients are cut off within the test; the default is 10 s. */
const HANDSHAKE_TIMEOUT = "750ms";
/** Short too, but not so short that 1,000 app connects made at once in this process miss it. */
const CONNECT_TIMEOUT = "3s";
/** Generous: what matters is that a flood does not grow memory with its size. */
const RSS_GROWTH_BOUND = 256 * 1024 * 1024;

let cp: RunningControlPlane;
const ztunnels: Ztunnel[] = [];
const servers: Server[] = [];
const { logger, records } = createMemoryLogger("debug");
let clientCert: WorkloadCertificate;
/** Connections the web app accepted, to see how much work a flood cost it. */
let appAccepted = 0;
/** An app on the node's loopback, and the connections it got: none may come through 15008. */
let loopbackPort = 0;
let loopbackAccepted = 0;
let rssBefore = 0;

/** node-b's sockets, except that connects to SLOW's app are never made: they stay pending. */
class BlackHoleFactory extends LocalSocketFactory {
  readonly pending: Socket[] = [];
  override connectToApp(pod: PodRef, target: { host: string; port: number }): Socket {
    if (target.host !== SLOW) return super.connectToApp(pod, target);
    const s = new Socket();
    this.pending.push(s);
    return s;
  }
}
let blackHole: BlackHoleFactory;

async function echoApp(host: string, port: number, onAccept?: () => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    onAccept?.();
    s.on("error", () => {});
    s.pipe(s);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ host, port }, resolve));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  cp = await startControlPlane({
    "mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
      node("node-a", NODES["node-a"]),
      node("node-b", NODES["node-b"]),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({ name: "other", namespace: "demo", node: "node-a", ip: OTHER, sa: "other" }),
      pod({
        name: "slow",
        namespace: "demo",
        node: "node-b",
        ip: SLOW,
        sa: "slow",
        labels: { app: "slow" },
        ports: [{ containerPort: SLOW_PORT }],
      }),
      // Local mode sends plaintext 15006 traffic to the first target port of the pod's services.
      service({
        name: "slow",
        namespace: "demo",
        vip: "127.41.100.2",
        selector: { app: "slow" },
        ports: [{ port: 80, targetPort: SLOW_PORT }],
      }),
      pod({
        name: "web",
        namespace: "demo",
        node: "node-b",
        ip: WEB,
        sa: "web",
        ports: [{ containerPort: APP_PORT }],
      }),
    ),
  });
  for (const [name, ip] of Object.entries(NODES)) {
    const cfg = parseZtunnelConfig(
      ["--admin-on-node-ip", "--handshake-timeout", HANDSHAKE_TIMEOUT, "--connect-timeout", CONNECT_TIMEOUT],
      {
        NODE_NAME: name,
        NODE_IP: ip,
        XDS_ADDRESS: cp.cp.address,
        AMBIENT_NODE_TOKEN_FILE: LocalTokenAuthenticator.tokenPath(cp.state.path, name),
      },
    );
    if (name === "node-b") blackHole = new BlackHoleFactory(ip);
    ztunnels.push(await Ztunnel.start(cfg, { logger, ...(name === "node-b" ? { sockets: blackHole } : {}) }));
  }
  await echoApp(WEB, APP_PORT, () => appAccepted++);
  await echoApp(OTHER, APP_PORT);
  loopbackPort = await echoApp("127.0.0.1", 0, () => loopbackAccepted++);
  clientCert = await cp.cp.ca.issueWorkloadCertificate(
    SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/client"),
  );
  await eventually(() => {
    for (const z of ztunnels) expect(z.readiness()).toEqual({ ready: true, reasons: [] });
  }, 15_000);
  rssBefore = process.memoryUsage().rss;
}, 30_000);

afterAll(async () => {
  for (const z of ztunnels) await z.stop();
  await cp?.stop();
  for (const s of servers) s.close();
});

function raw(opts: { preface?: boolean; host?: string; serverIdentity?: string } = {}): Promise<RawH2> {
  return RawH2.connect({
    host: WEB,
    port: 15008,
    localAddress: CLIENT,
    certificate: clientCert,
    rootsPem: cp.cp.ca.rootCertsPem,
    serverIdentity: WEB_ID,
    ...opts,
  });
}

/** A normal connection through both ztunnels: SOCKS5 on the client pod → HBONE → web's app. */
async function goodClientServed(): Promise<void> {
  const s = await socksConnect(
    { host: CLIENT, port: 15080 },
    { host: WEB, port: APP_PORT },
    { localAddress: CLIENT },
  );
  s.resume();
  s.write("still served\n");
  const [echo] = (await once(s, "data")) as [Buffer];
  expect(echo.toString()).toBe("still served\n");
  s.destroy();
}

/**
 * The case was logged exactly once, with `code`, and the process still serves and is bounded. Where
 * Node versions differ, `code` lists the codes the case may have, counted from `since` (an index
 * into the records: codes that other cases log too).
 */
async function afterAbuse(code: string | readonly string[], since = 0): Promise<void> {
  const codes = typeof code === "string" ? [code] : code;
  const logged = () => codes.flatMap((c) => logsWith(records.slice(since), { code: c }));
  await eventually(() => expect(logged()).toHaveLength(1));
  await goodClientServed();
  expect(process.memoryUsage().rss - rssBefore).toBeLessThan(RSS_GROWTH_BOUND);
}

describe("15008 is never an open proxy", () => {
  const cases: [string, string, number][] = [
    ["the pod itself", `${WEB}:${APP_PORT}`, 200],
    ["the pod as IPv4-mapped IPv6", `[::ffff:${WEB}]:${APP_PORT}`, 200],
    ["127.0.0.1", `127.0.0.1:${APP_PORT}`, 503],
    ["IPv4-mapped 127.0.0.1", `[::ffff:127.0.0.1]:${APP_PORT}`, 503],
    ["IPv6 loopback", `[::1]:${APP_PORT}`, 503],
    ["the node's admin port", `${NODES["node-b"]}:15000`, 503],
    ["the node's metrics port", `${NODES["node-b"]}:15020`, 503],
    ["the node's readiness port", `${NODES["node-b"]}:15021`, 503],
    ["another node's pod", `${OTHER}:${APP_PORT}`, 503],
    ["a hostname", `web.demo.svc.cluster.local:${APP_PORT}`, 400],
    ["localhost", `localhost:${APP_PORT}`, 400],
    ["ztunnel's SOCKS5 listener in the pod", `${WEB}:15080`, 400],
    ["ztunnel's outbound listener in the pod", `${WEB}:15001`, 400],
    ["ztunnel's plaintext listener in the pod", `${WEB}:15006`, 400],
    ["ztunnel's HBONE listener in the pod", `${WEB}:15008`, 400],
  ];
  for (const [name, authority, status] of cases) {
    it(`${name} (${authority}) → ${status}`, async () => {
      const h = await raw();
      try {
        expect(await h.connect(1, authority)).toEqual({ status });
        if (status !== 200) return;
        h.data(1, Buffer.from("hello"));
        await h.waitFor((f) => f.type === FrameType.DATA && f.streamId === 1);
        expect(h.received(1).toString()).toBe("hello");
      } finally {
        h.destroy();
      }
    });
  }

  it("a CONNECT to the pod's own SOCKS5 port cannot be used to reach the node's loopback", async () => {
    // Before the fix this tunnel reached ztunnel's SOCKS5 listener inside the pod, which connected
    // anywhere (here an app on 127.0.0.1) as the pod.
    const h = await raw();
    try {
      const answer = await h.connect(1, `${WEB}:15080`);
      if (answer.status === 200) {
        const port = Buffer.alloc(2);
        port.writeUInt16BE(loopbackPort);
        h.data(1, Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1]), port]));
        await h.waitFor((f) => f.type === FrameType.DATA && f.streamId === 1 && h.received(1).length >= 12);
      }
      expect(answer.status).toBe(400);
      expect(loopbackAccepted).toBe(0);
    } finally {
      h.destroy();
    }
    await eventually(() =>
      expect(
        logsWith(records, { "dst.addr": `${WEB}:15080` }).some((l) =>
          /own listener/.test(String(l["error"])),
        ),
      ).toBe(true),
    );
  });
});

describe("HTTP/2 abuse on 15008", () => {
  it("rapid reset: HEADERS+RST_STREAM thousands of times → GOAWAY ENHANCE_YOUR_CALM, the app barely touched", async () => {
    const h = await raw();
    const acceptedBefore = appAccepted;
    const frames: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = 1 + 2 * i;
      frames.push(h.connectFrame(id, `${WEB}:${APP_PORT}`), h.rst(id, ErrorCode.CANCEL));
    }
    h.write(Buffer.concat(frames));
    await h.closed;
    // nghttp2's own budget answers GOAWAY INTERNAL_ERROR after 1000 (and Node reports nothing);
    // ours trips first, says why, and drops the connection.
    expect(h.goaway()).toMatchObject({
      code: ErrorCode.ENHANCE_YOUR_CALM,
      debug: expect.stringMatching(/rapid reset/),
    });
    // Streams reset within the read that opened them never reach the app.
    expect(appAccepted - acceptedBefore).toBeLessThan(50);
    await afterAbuse("AMB_HBONE_RESET_FLOOD");
  });

  it("streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused one by one; the good ones keep working", async () => {
    const h = await raw();
    try {
      const limit = h.serverSettings.get(0x3);
      expect(limit).toBe(1000);
      const authority = `${WEB}:${APP_PORT}`;
      // Open up to the advertised limit and one past it, in bursts as a busy client would.
      for (let first = 0; first <= limit!; first += 50) {
        const ids: number[] = [];
        for (let i = first; i < Math.min(first + 50, limit! + 1); i++) ids.push(1 + 2 * i);
        h.write(Buffer.concat(ids.map((id) => h.connectFrame(id, authority))));
        await h.waitFor(
          (f) =>
            f.streamId === ids.at(-1) && (f.type === FrameType.HEADERS || f.type === FrameType.RST_STREAM),
          15_000,
        );
      }
      const answered = h.frames.filter(
        (f) => f.type === FrameType.HEADERS && f.headers?.[":status"] === "200",
      );
      const refused = h.frames.filter((f) => f.type === FrameType.RST_STREAM);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((f) => f.payload.readUInt32BE(0) === ErrorCode.REFUSED_STREAM)).toBe(true);
      expect(answered.length + refused.length).toBe(limit! + 1);
      // The one past the advertised limit was refused on its own.
      expect(refused.at(-1)?.streamId).toBe(1 + 2 * limit!);
      expect(h.goaway()).toBeUndefined();
      // The first stream, opened long before, still carries bytes both ways.
      h.data(1, Buffer.from("first stream"));
      await h.waitFor((f) => f.type === FrameType.DATA && f.streamId === 1);
      expect(h.received(1).toString()).toBe("first stream");
    } finally {
      h.destroy();
    }
    await afterAbuse("AMB_HBONE_STREAM_REFUSED");
  }, 60_000);

  it("CONTINUATION flood: endless CONTINUATION without END_HEADERS ends the session", async () => {
    const h = await raw();
    h.write(h.connectFrame(1, `${WEB}:${APP_PORT}`, { endHeaders: false }));
    const fragment = encodeHeaders([["x-pad", "a".repeat(100)]]);
    const burst = Buffer.concat(
      Array.from({ length: 100 }, () => h.frame(FrameType.CONTINUATION, 0, 1, fragment)),
    );
    for (let i = 0; i < 200 && !h.isClosed; i++) {
      h.write(burst);
      await new Promise((r) => setImmediate(r));
    }
    await h.closed;
    await afterAbuse("AMB_HBONE_PROTOCOL");
    expect(String(logsWith(records, { code: "AMB_HBONE_PROTOCOL" })[0]?.["msg"])).toMatch(/CONTINUATION/);
  });

  it("a header block past SETTINGS_MAX_HEADER_LIST_SIZE refuses that stream only", async () => {
    const h = await raw();
    try {
      const limit = h.serverSettings.get(0x6)!;
      expect(limit).toBe(16 * 1024);
      const block = encodeHeaders([
        [":method", "CONNECT"],
        [":authority", `${WEB}:${APP_PORT}`],
        ["x-big", "a".repeat(limit + 1)],
      ]);
      const parts: Buffer[] = [];
      for (let off = 0; off < block.length; off += 16_384) parts.push(block.subarray(off, off + 16_384));
      h.write(
        Buffer.concat(
          parts.map((p, i) =>
            h.frame(
              i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION,
              i === parts.length - 1 ? Flag.END_HEADERS : 0,
              1,
              p,
            ),
          ),
        ),
      );
      const reset = await h.waitFor((f) => f.type === FrameType.RST_STREAM && f.streamId === 1);
      expect(reset.payload.readUInt32BE(0)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
      expect(await h.connect(3, `${WEB}:${APP_PORT}`)).toEqual({ status: 200 });
    } finally {
      h.destroy();
    }
    await afterAbuse("AMB_HBONE_HEADERS_REFUSED");
  });

  it("random bytes after the preface: nghttp2 answers GOAWAY, and the connection is closed", async () => {
    const since = records.length;
    const h = await raw();
    h.write(Buffer.from("\x00\x00\x08\x00\x00\x00\x00\x00\x00not a frame at all, just noise", "latin1"));
    await h.closed;
    expect(h.goaway()?.code).toBeGreaterThan(0);
    // Node 24 reports nghttp2's verdict as a session error (PROTOCOL). Node 20 does not: its session
    // ends on our first-CONNECT timer (IDLE). Either way, once.
    await afterAbuse(["AMB_HBONE_PROTOCOL", "AMB_HBONE_IDLE"], since);
  });

  it("random bytes instead of the HTTP/2 preface end the session", async () => {
    const h = await raw({ preface: false });
    h.write(Buffer.from("GET / HTTP/1.1\r\nHost: web\r\n\r\n"));
    await h.closed;
    await eventually(() =>
      expect(
        logsWith(records, { code: "AMB_HBONE_PROTOCOL" }).filter((l) =>
          /magic|preface/i.test(String(l["msg"])),
        ),
      ).toHaveLength(1),
    );
    await goodClientServed();
  });

  it("random bytes instead of TLS: one line, the connection closed", async () => {
    const s = new Socket();
    s.on("error", () => {});
    s.connect({ host: WEB, port: 15008, localAddress: CLIENT });
    await once(s, "connect");
    s.write(Buffer.from("\x16\x03\x01\x00\x05hello, not TLS at all\r\n"));
    s.resume();
    await once(s, "close");
    await afterAbuse("AMB_HBONE_TLS");
  });
});

describe("slow and idle clients", () => {
  it("a TCP connection to 15008 that never starts TLS is closed after the handshake timeout", async () => {
    const s = new Socket();
    s.on("error", () => {});
    s.connect({ host: WEB, port: 15008, localAddress: CLIENT });
    await once(s, "connect");
    s.resume();
    await once(s, "close");
    await eventually(() =>
      expect(logsWith(records, { code: "AMB_HBONE_HANDSHAKE_TIMEOUT" }).length).toBeGreaterThan(0),
    );
    await goodClientServed();
  });

  it("a TLS ClientHello that never completes is closed after the handshake timeout", async () => {
    const before = logsWith(records, { code: "AMB_HBONE_HANDSHAKE_TIMEOUT" }).length;
    const s = new Socket();
    s.on("error", () => {});
    s.connect({ host: WEB, port: 15008, localAddress: CLIENT });
    await once(s, "connect");
    // The first bytes of a TLS record announcing a 512-byte handshake message, then nothing.
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    s.resume();
    await once(s, "close");
    await eventually(() =>
      expect(logsWith(records, { code: "AMB_HBONE_HANDSHAKE_TIMEOUT" }).length).toBe(before + 1),
    );
    await goodClientServed();
  });

  it("a client that completes TLS and never sends a CONNECT is closed", async () => {
    const before = logsWith(records, { code: "AMB_HBONE_IDLE" }).length;
    const h = await raw();
    await h.closed;
    expect(h.goaway()).toMatchObject({
      code: ErrorCode.NO_ERROR,
      debug: expect.stringMatching(/no CONNECT/),
    });
    await eventually(() => expect(logsWith(records, { code: "AMB_HBONE_IDLE" }).length).toBe(before + 1));
    await goodClientServed();
  });

  it("a TLS client that never sends the preface is closed", async () => {
    const before = logsWith(records, { code: "AMB_HBONE_IDLE" }).length;
    const s = connectTls({
      host: WEB,
      port: 15008,
      key: clientCert.privateKeyPem,
      cert: clientCert.certChainPem.slice(0, -1).join(""),
      ca: cp.cp.ca.rootCertsPem,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    s.on("error", () => {});
    await once(s, "secureConnect");
    s.resume();
    await once(s, "close");
    await eventually(() => expect(logsWith(records, { code: "AMB_HBONE_IDLE" }).length).toBe(before + 1));
  });

  it("a CONNECT whose app never answers the TCP handshake gets 503 after the connect timeout", async () => {
    const h = await raw({ host: SLOW, serverIdentity: "spiffe://cluster.local/ns/demo/sa/slow" });
    try {
      expect(await h.connect(1, `${SLOW}:${SLOW_PORT}`, 10_000)).toEqual({ status: 503 });
    } finally {
      h.destroy();
    }
    expect(blackHole.pending.length).toBeGreaterThan(0);
    expect(blackHole.pending.every((s) => s.destroyed)).toBe(true);
    await goodClientServed();
  });

  it("plaintext 15006 whose app never answers is reset after the connect timeout", async () => {
    const before = blackHole.pending.length;
    const s = new Socket();
    s.connect({ host: SLOW, port: 15006, localAddress: CLIENT });
    const outcome = await new Promise<string>((resolve) => {
      s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      s.once("close", () => resolve("closed"));
    });
    expect(outcome).toBe("ECONNRESET");
    expect(blackHole.pending.length).toBe(before + 1);
    expect(blackHole.pending.at(-1)?.destroyed).toBe(true);
    await eventually(() =>
      expect(
        logsWith(records, { direction: "inbound", "dst.workload": "slow" }).filter((l) =>
          /timed out/.test(String(l["error"])),
        ).length,
      ).toBe(2),
    );
  });

  for (const [name, bytes] of [
    ["sends nothing", []],
    ["sends half a greeting", [0x05, 0x02, 0x00]],
    ["stops inside the request", [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127]],
  ] as const) {
    it(`a SOCKS5 client that ${name} is closed after the handshake timeout`, async () => {
      const before = logsWith(records, { code: "AMB_SOCKS_TIMEOUT" }).length;
      const s = new Socket();
      s.on("error", () => {});
      s.connect({ host: CLIENT, port: 15080, localAddress: CLIENT });
      await once(s, "connect");
      if (bytes.length) s.write(Buffer.from(bytes));
      s.resume();
      await once(s, "close");
      await eventually(() =>
        expect(logsWith(records, { code: "AMB_SOCKS_TIMEOUT" }).length).toBe(before + 1),
      );
      await goodClientServed();
    });
  }
});
