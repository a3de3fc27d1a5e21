// Regression, on 127.29.x.y: one HBONE stream's end or failure must never take its session down,
// and every connection must finish.
//
// The benchmark's connections-per-second test (SOCKS5 → client pod → HBONE → app, 1 byte each way,
// the app closes first) failed 7–21 of ~4,000 connections: the copy destroy()ed each stream right
// after ending it, so node-a sent an RST_STREAM for every connection; nghttp2 on node-b allows a
// burst of 1000 of those (then 33/s) before answering GOAWAY INTERNAL_ERROR, which failed every
// stream in flight on the session. A stream gone while node-b was still connecting the app (such as
// the ones that GOAWAY killed) also left its connection open forever: the copy waited for events
// that had already happened.

import { once } from "node:events";
import { createServer, type Server, Socket } from "node:net";
import { LocalTokenAuthenticator } from "@ambient/controlplane";
import { createMemoryLogger } from "@ambient/core";
import { LocalSocketFactory, type PodRef, parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  startControlPlane,
} from "../utils/index.js";
import { socksConnect } from "../utils/socks.js";

const CLIENT = "127.29.1.10";
const APP = "127.29.2.10";
const NODES = { "node-a": "127.29.1.1", "node-b": "127.29.2.1" } as const;
/** The app's port. */
const PORT = 9000;
/** Another port of the app, whose connections node-b makes only when the test says so. */
const HELD_PORT = 9001;

let cp: RunningControlPlane;
const ztunnels: Record<string, Ztunnel> = {};
const servers: Server[] = [];
/** The app's open sockets, by the port they were accepted on. */
const appSockets = new Map<number, Set<Socket>>([
  [PORT, new Set()],
  [HELD_PORT, new Set()],
]);

/** node-b's app connections to HELD_PORT wait here until released. */
const held: (() => void)[] = [];
class HoldingSocketFactory extends LocalSocketFactory {
  override connect(pod: PodRef | undefined, target: { host: string; port: number }): Socket {
    if (target.port !== HELD_PORT) return super.connect(pod, target);
    const socket = new Socket({ allowHalfOpen: true });
    held.push(() => socket.connect({ host: target.host, port: target.port, localAddress: NODES["node-b"] }));
    return socket;
  }
}

/** The benchmark's app: 'C' → answer 'c' and close first; anything else → reset. */
function startApp(port: number): Promise<void> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const open = appSockets.get(port)!;
    open.add(s);
    s.once("close", () => open.delete(s));
    s.on("error", () => {});
    s.once("data", (c: Buffer) => {
      if (c[0] === 0x43 /* C */) s.end("c");
      else s.resetAndDestroy();
    });
  });
  servers.push(server);
  return new Promise((resolve) => server.listen({ host: APP, port }, resolve));
}

beforeAll(async () => {
  cp = await startControlPlane({
    "mesh.yaml": [
      namespace("bench", { "istio.io/dataplane-mode": "ambient" }),
      node("node-a", NODES["node-a"]),
      node("node-b", NODES["node-b"]),
      pod({ name: "client", namespace: "bench", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({ name: "server", namespace: "bench", node: "node-b", ip: APP, sa: "server" }),
    ].join("---\n"),
  });
  const { logger } = createMemoryLogger("info");
  for (const [name, ip] of Object.entries(NODES)) {
    const cfg = parseZtunnelConfig(["--admin-on-node-ip"], {
      NODE_NAME: name,
      NODE_IP: ip,
      XDS_ADDRESS: cp.cp.address,
      AMBIENT_NODE_TOKEN_FILE: LocalTokenAuthenticator.tokenPath(cp.state.path, name),
    });
    ztunnels[name] = await Ztunnel.start(cfg, {
      logger,
      ...(name === "node-b" ? { sockets: new HoldingSocketFactory(ip) } : {}),
    });
  }
  await startApp(PORT);
  await startApp(HELD_PORT);
  await eventually(() => {
    for (const z of Object.values(ztunnels)) expect(z.readiness()).toEqual({ ready: true, reasons: [] });
  }, 15_000);
}, 30_000);

afterAll(async () => {
  for (const release of held.splice(0)) release();
  for (const z of Object.values(ztunnels)) await z.stop();
  await cp?.stop();
  for (const open of appSockets.values()) for (const s of open) s.destroy();
  for (const s of servers) s.close();
});

function openConnections(name: keyof typeof NODES): number {
  return (ztunnels[name]!.configDump() as { connections: { open: number } }).connections.open;
}

/** One benchmark connection: open, one byte each way, the app closes, then the client. */
async function oneConnection(mode: "C" | "R"): Promise<string> {
  let socket: Socket | undefined;
  try {
    socket = await socksConnect(
      { host: CLIENT, port: 15080 },
      { host: APP, port: PORT },
      { localAddress: CLIENT },
    );
    const s = socket;
    return await new Promise<string>((resolve) => {
      let got = "";
      let ended = false;
      s.on("data", (c: Buffer) => {
        got += c.toString();
      });
      s.once("end", () => {
        ended = true;
        s.end();
      });
      s.once("error", (err: NodeJS.ErrnoException) =>
        resolve(err.code === "ECONNRESET" ? "reset" : err.message),
      );
      s.once("close", () => resolve(ended && got === "c" ? "ok" : `closed after ${JSON.stringify(got)}`));
      s.resume(); // socksConnect hands the socket over paused
      s.write(mode);
    });
  } catch (err) {
    socket?.destroy();
    return `failed: ${(err as Error).message}`;
  }
}

describe("many short connections through two ztunnels", () => {
  it("4,000 connections (every 25th reset by the app): none fails, and none stays open", async () => {
    const outcomes: Record<string, Record<string, number>> = { C: {}, R: {} };
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 4000) {
          const mode = next++ % 25 === 24 ? "R" : "C";
          const outcome = await oneConnection(mode);
          const counts = outcomes[mode]!;
          counts[outcome] = (counts[outcome] ?? 0) + 1;
        }
      }),
    );
    // Before the fix: node-b answered GOAWAY INTERNAL_ERROR about once per 1,000 connections.
    expect(outcomes).toEqual({ C: { ok: 3840 }, R: { reset: 160 } });
    await eventually(() => {
      expect(openConnections("node-a")).toBe(0);
      expect(openConnections("node-b")).toBe(0);
      expect(appSockets.get(PORT)!.size).toBe(0);
    });
  }, 120_000);

  it("a client gone while node-b is still connecting the app: both sides finish, the app's socket closes", async () => {
    // SOCKS5 by hand: greeting and CONNECT to APP:HELD_PORT, then no waiting for the reply.
    const client = new Socket();
    client.on("error", () => {});
    client.connect({ host: CLIENT, port: 15080, localAddress: CLIENT });
    await once(client, "connect");
    const [a, b, c, d] = APP.split(".").map(Number) as [number, number, number, number];
    client.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, a, b, c, d, HELD_PORT >> 8, HELD_PORT & 0xff]));
    await eventually(() => expect(held).toHaveLength(1));
    expect(openConnections("node-b")).toBe(1);

    // The client leaves (a reset: a FIN alone would be a half-close, which a tunnel carries): node-a
    // cancels its CONNECT, RST_STREAM CANCEL on that stream alone.
    client.resetAndDestroy();
    await eventually(() => expect(openConnections("node-a")).toBe(0));
    // A connection on the same session after it: node-b has processed the cancel by the time it
    // answers this one (frames on a session are handled in order), and the session is still fine.
    expect(await oneConnection("C")).toBe("ok");

    // Now node-b's app connection completes, for a stream that is gone.
    held.shift()!();
    await eventually(() => {
      expect(openConnections("node-b")).toBe(0);
      expect(appSockets.get(HELD_PORT)!.size).toBe(0);
    });
  });
});
