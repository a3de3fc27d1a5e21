// The agent ⇄ ztunnel protocol end to end, with the real server (agent side) and client (ztunnel
// side) on a unix socket. No root needed. Also what a broken peer on either side gets: garbage, a
// 100 MB line without a newline (bounded memory, a clear error), a peer that never answers.
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ZtunnelServer } from "@ambient/cni";
import { createLogger, createMemoryLogger, type InpodPod } from "@ambient/core";
import { AgentClient } from "@ambient/ztunnel";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const logger = createLogger({ level: "silent" });
const pod = (name: string): InpodPod => ({
  uid: `Kubernetes//Pod/demo/${name}`,
  name,
  namespace: "demo",
  netns: `/var/run/netns/ambient-demo-${name}`,
  ips: ["198.19.1.10"],
});

const until = async (check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};

/** Writes 100 MiB without a newline, one reused MiB at a time, until the peer hangs up. */
async function writeHugeLine(s: Socket): Promise<void> {
  const mib = Buffer.alloc(1024 * 1024, "x");
  s.on("error", () => {});
  for (let i = 0; i < 100 && !s.destroyed && s.writable; i++) {
    if (s.write(mib)) continue;
    await new Promise<void>((resolve) => {
      s.once("drain", resolve);
      s.once("close", resolve);
    });
  }
}

/** A raw client on the agent's socket: what it heard, and a promise for its close. */
async function rawClient(
  path: string,
): Promise<{ socket: Socket; heard: () => string; closed: Promise<void> }> {
  const socket = connect(path);
  socket.on("error", () => {});
  await once(socket, "connect");
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, heard: () => Buffer.concat(chunks).toString(), closed };
}

describe("agent ⇄ ztunnel protocol", () => {
  let dir: string;
  let sock: string;
  const closers: Array<() => unknown> = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "amb-proto-"));
    sock = join(dir, "ztunnel.sock");
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it("replays, follows live adds and deletes, and after an agent restart drops pods not replayed", async () => {
    let enrolled = [pod("a"), pod("b")];
    let server = new ZtunnelServer(sock, () => enrolled, logger);
    await server.start();
    const client = new AgentClient(sock, logger);
    closers.push(() => client.close());
    client.start();
    await until(() => client.synced && client.pods.size === 2);

    await server.add(pod("c"));
    expect(client.pods.has(pod("c").uid)).toBe(true);
    await server.del(pod("a").uid);
    expect(client.pods.has(pod("a").uid)).toBe(false);

    // The agent restarts and now manages only b: ztunnel keeps serving meanwhile, then drops c.
    await server.close();
    await until(() => !client.connected);
    expect(client.pods.size).toBe(2);
    enrolled = [pod("b")];
    server = new ZtunnelServer(sock, () => enrolled, logger);
    await server.start();
    closers.push(() => server.close());
    await until(() => client.connected && client.pods.size === 1);
    expect([...client.pods.keys()]).toEqual([pod("b").uid]);
  });

  it("a ztunnel that hears garbage says so, hangs up and reconnects", async () => {
    const heard: string[] = [];
    let connections = 0;
    const fake: Server = createServer((s) => {
      connections++;
      // The client hangs up on garbage; if our reply is still unread the kernel resets the
      // connection, and an accepted socket without an error listener throws ECONNRESET.
      s.on("error", () => {});
      s.on("data", (c) => heard.push(c.toString()));
      s.write('{"id":1,"type":"add","pod":{"uid":"x"}}\n');
    });
    await new Promise<void>((r) => fake.listen(sock, () => r()));
    closers.push(() => new Promise<void>((r) => fake.close(() => r())));
    const client = new AgentClient(sock, logger);
    closers.push(() => client.close());
    client.start();
    await until(() => connections >= 2);
    expect(heard.join("")).toMatch(
      /"type":"error","error":"add 1: pod\.\\"ips\\" must be a list of IP addresses/,
    );
    expect(client.pods.size).toBe(0);
  });

  describe("a broken peer on the agent's socket", () => {
    const { logger: memory, records } = createMemoryLogger("debug");
    let server: ZtunnelServer;
    let client: AgentClient;
    beforeEach(async () => {
      records.length = 0;
      server = new ZtunnelServer(sock, () => [pod("a")], memory, 300);
      await server.start();
      client = new AgentClient(sock, logger);
      client.start();
      await until(() => client.synced);
    });
    afterEach(async () => {
      client.close();
      await server.close();
    });

    const logged = (code: string) => records.filter((r) => r["code"] === code);

    it("garbage from a client: it hears why and is closed; the real ztunnel keeps getting pods", async () => {
      const bad = await rawClient(sock);
      bad.socket.write("hello, not JSON\n");
      await bad.closed;
      expect(bad.heard()).toMatch(/"type":"error","error":"not JSON/);
      expect(logged("AMB_AGENT_BAD_MESSAGE")).toHaveLength(1);
      await server.add(pod("b"));
      expect(client.pods.has(pod("b").uid)).toBe(true);
    });

    it("a 100 MB line without a newline: closed with a clear error, memory bounded", async () => {
      const bad = await rawClient(sock);
      const rss = process.memoryUsage().rss;
      await writeHugeLine(bad.socket);
      await bad.closed;
      expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
      expect(bad.heard()).toMatch(/"type":"error","error":"a line longer than the protocol allows"/);
      expect(logged("AMB_AGENT_LINE_TOO_LONG")).toHaveLength(1);
      await server.add(pod("b"));
      expect(client.pods.has(pod("b").uid)).toBe(true);
    });

    it("a client that never acknowledges is closed at the ack deadline, and adds stop waiting on it", async () => {
      const silent = await rawClient(sock);
      await silent.closed;
      expect(logged("AMB_AGENT_ACK_TIMEOUT")).toHaveLength(1);
      await until(() => server.connected === 1);
      // Before, every add waited for the silent peer's ack and then failed (so did CNI ADDs).
      await server.add(pod("b"));
      expect(client.pods.has(pod("b").uid)).toBe(true);
    });
  });

  it("a ztunnel whose agent sends a 100 MB line hangs up with a clear error, bounded, and reconnects", async () => {
    let connections = 0;
    const heard: string[] = [];
    const fake: Server = createServer((s) => {
      connections++;
      s.on("data", (c) => heard.push(c.toString()));
      if (connections === 1) void writeHugeLine(s);
    });
    await new Promise<void>((r) => fake.listen(sock, () => r()));
    closers.push(() => new Promise<void>((r) => fake.close(() => r())));
    const rss = process.memoryUsage().rss;
    const client = new AgentClient(sock, logger);
    closers.push(() => client.close());
    client.start();
    await until(() => connections >= 2);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
    expect(heard.join("")).toMatch(/"type":"error","error":"a line longer than the protocol allows"/);
  });
});
