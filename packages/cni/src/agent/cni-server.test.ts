// The agent's CNI endpoint on a real unix socket: valid requests reach the callbacks, bad ones get
// a 400 naming the fields, callback failures keep their status, the socket is root-only.
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, createMemoryLogger } from "@ambient/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentError, type CniAddRequest, type CniDelRequest } from "./agent.js";
import { type CniServer, startCniServer } from "./cni-server.js";

const logger = createLogger({ level: "silent" });
const ADD: CniAddRequest = {
  containerId: "c1",
  netns: "/var/run/netns/ambient-demo-web",
  ifName: "eth0",
  podName: "web",
  podNamespace: "demo",
  ips: ["198.19.1.5"],
};

function call(
  sock: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; body: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, agent: false }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("CNI server", () => {
  let dir: string;
  let sock: string;
  let server: CniServer | undefined;
  let adds: CniAddRequest[];
  let dels: CniDelRequest[];
  let fail: Error | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "amb-cni-server-"));
    sock = join(dir, "run", "cni.sock");
    adds = [];
    dels = [];
    fail = undefined;
    server = await startCniServer({
      socketPath: sock,
      logger,
      onAdd: async (r) => {
        if (fail) throw fail;
        adds.push(r);
        return { enrolled: r.podNamespace === "demo" };
      },
      onDel: async (r) => {
        if (fail) throw fail;
        dels.push(r);
      },
    });
  });
  afterEach(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("hands a valid ADD and DEL to the callbacks", async () => {
    expect(await call(sock, "POST", "/v1/cni/add", JSON.stringify(ADD))).toEqual({
      status: 200,
      body: { ok: true, enrolled: true },
    });
    expect(adds).toEqual([ADD]);
    const del = { containerId: "c1", ifName: "eth0", podName: "web", podNamespace: "demo" };
    expect((await call(sock, "POST", "/v1/cni/del", JSON.stringify(del))).status).toBe(200);
    expect(dels).toEqual([del]);
  });

  it("answers STATUS on GET /v1/cni/status", async () => {
    expect(await call(sock, "GET", "/v1/cni/status")).toEqual({ status: 200, body: { ok: true } });
  });

  it("a bad body gets one 400 naming every bad field; garbage gets a 400 too", async () => {
    const bad = await call(
      sock,
      "POST",
      "/v1/cni/add",
      JSON.stringify({ ...ADD, netns: 3, podName: undefined, ips: ["x"] }),
    );
    expect(bad.status).toBe(400);
    for (const f of ["netns", "podName is missing", "ips[0]"]) expect(bad.body.error).toContain(f);
    expect((await call(sock, "POST", "/v1/cni/add", "\u0000garbage")).body.error).toContain("not JSON");
    expect((await call(sock, "POST", "/v1/cni/del", "[]")).status).toBe(400);
    expect(adds).toEqual([]);
    // and the server still works
    expect((await call(sock, "POST", "/v1/cni/add", JSON.stringify(ADD))).status).toBe(200);
  });

  it("a failing callback keeps its 4xx status, anything else is a 500", async () => {
    fail = new AgentError("network namespace /x does not exist", 400);
    expect(await call(sock, "POST", "/v1/cni/add", JSON.stringify(ADD))).toEqual({
      status: 400,
      body: { error: "network namespace /x does not exist" },
    });
    fail = new Error("iptables-restore failed");
    expect((await call(sock, "POST", "/v1/cni/add", JSON.stringify(ADD))).status).toBe(500);
  });

  it("unknown paths are 404, wrong methods 405, oversized bodies 413", async () => {
    expect((await call(sock, "POST", "/v1/other", "{}")).status).toBe(404);
    expect((await call(sock, "GET", "/v1/cni/add")).status).toBe(405);
    expect((await call(sock, "POST", "/v1/cni/add", "x".repeat(100_000))).status).toBe(413);
  });

  it("the socket is 0600, replaces a stale file, refuses a live one, and goes on close", async () => {
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    await expect(
      startCniServer({
        socketPath: sock,
        logger,
        onAdd: async () => ({ enrolled: false }),
        onDel: async () => {},
      }),
    ).rejects.toMatchObject({ code: "AMB_LISTEN_FAILED" });
    await server?.close();
    server = undefined;
    expect(existsSync(sock)).toBe(false);
    writeFileSync(sock, "stale");
    server = await startCniServer({
      socketPath: sock,
      logger,
      onAdd: async () => ({ enrolled: false }),
      onDel: async () => {},
    });
    expect((await call(sock, "GET", "/v1/cni/status")).status).toBe(200);
  });
});

describe("CNI server against clients that do not speak HTTP or stall", () => {
  let dir: string;
  let sock: string;
  let server: CniServer;
  const { logger: memory, records } = createMemoryLogger("debug");
  beforeEach(async () => {
    records.length = 0;
    dir = mkdtempSync(join(tmpdir(), "amb-cni-abuse-"));
    sock = join(dir, "cni.sock");
    server = await startCniServer({
      socketPath: sock,
      logger: memory,
      requestTimeoutMs: 300,
      onAdd: async () => ({ enrolled: true }),
      onDel: async () => {},
    });
  });
  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes `chunks` (stopping when the server hangs up) and resolves with what came back. */
  async function exchange(chunks: Iterable<Buffer>): Promise<string> {
    const s = connect(sock);
    // EPIPE once the server has hung up on a writer is expected.
    s.on("error", () => {});
    await once(s, "connect");
    const got: Buffer[] = [];
    s.on("data", (c: Buffer) => got.push(c));
    const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
    for (const c of chunks) {
      if (s.destroyed || !s.writable) break;
      if (s.write(c)) continue;
      await new Promise<void>((resolve) => {
        s.once("drain", resolve);
        s.once("close", resolve);
      });
    }
    await closed;
    return Buffer.concat(got).toString();
  }

  function logged(code: string): Record<string, unknown>[] {
    return records.filter((r) => r["code"] === code);
  }

  it("garbage: 400, one log line, and the next client is served", async () => {
    expect(await exchange([Buffer.from("\u0000\u0001garbage\r\n\r\n")])).toMatch(/^HTTP\/1\.1 400 /);
    expect(logged("AMB_AGENT_BAD_HTTP")).toHaveLength(1);
    expect((await call(sock, "GET", "/v1/cni/status")).status).toBe(200);
  });

  it("a 100 MB line without a newline: 431, memory bounded, the next client served", async () => {
    const mib = Buffer.alloc(1024 * 1024, "x");
    const rss = process.memoryUsage().rss;
    const answer = await exchange(
      (function* () {
        yield Buffer.from("POST /v1/cni/add?");
        for (let i = 0; i < 100; i++) yield mib;
      })(),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
    expect(logged("AMB_AGENT_BAD_HTTP")).toHaveLength(1);
    expect((await call(sock, "GET", "/v1/cni/status")).status).toBe(200);
  });

  it("a client that never sends: 408 after the request timeout, one log line", async () => {
    expect(await exchange([])).toMatch(/^HTTP\/1\.1 408 /);
    expect(logged("AMB_AGENT_REQUEST_TIMEOUT")).toHaveLength(1);
    expect((await call(sock, "GET", "/v1/cni/status")).status).toBe(200);
  });
});
