// The agent ⇄ ztunnel protocol end to end, with the real server (agent side) and client (ztunnel
// side) on a unix socket. No root needed.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ZtunnelServer } from "@ambient/cni";
import { createLogger, type InpodPod } from "@ambient/core";
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
});
