// The plugin's HTTP client on real unix sockets: answers, deadlines and the ways an agent can be absent.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { callAgent } from "./agent-client.js";

describe("agent client", () => {
  let dir: string;
  let sock: string;
  let server: Server | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "amb-cni-client-"));
    sock = join(dir, "cni.sock");
  });
  afterEach(async () => {
    if (server) await new Promise((r) => server?.close(r));
    server?.closeAllConnections();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const serve = (handler: Parameters<typeof createServer>[1]) =>
    new Promise<void>((resolve) => {
      server = createServer(handler);
      server.listen(sock, resolve);
    });

  it("posts JSON and reads the answer", async () => {
    await serve((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => res.writeHead(201).end(JSON.stringify({ echo: JSON.parse(body), path: req.url })));
    });
    const a = await callAgent(sock, "POST", "/v1/cni/add", { x: 1 }, 1000);
    expect(a).toEqual({ status: 201, body: { echo: { x: 1 }, path: "/v1/cni/add" } });
  });

  it("no socket file, or a stale one, is 'unreachable' with the errno", async () => {
    await expect(callAgent(sock, "GET", "/", undefined, 1000)).rejects.toMatchObject({
      kind: "unreachable",
      errno: "ENOENT",
    });
    writeFileSync(sock, "");
    await expect(callAgent(sock, "GET", "/", undefined, 1000)).rejects.toMatchObject({ kind: "unreachable" });
  });

  it("an agent that never answers hits the deadline", async () => {
    await serve(() => {});
    await expect(callAgent(sock, "GET", "/", undefined, 100)).rejects.toMatchObject({
      kind: "timeout",
      message: expect.stringContaining(sock),
    });
  });

  it("a body that is not a JSON object is a protocol error", async () => {
    await serve((_req, res) => res.end("<html>"));
    await expect(callAgent(sock, "GET", "/", undefined, 1000)).rejects.toMatchObject({ kind: "protocol" });
  });
});
