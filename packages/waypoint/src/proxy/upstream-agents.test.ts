import { once } from "node:events";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import type { Workload } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { eventually, plainDeps, plainWorkload } from "./testing.js";
import type { UpstreamDeps } from "./upstream.js";
import { UpstreamAgents } from "./upstream-agents.js";

const target = (uid: string) => ({
  workload: { uid, addresses: [], tunnelProtocol: "HBONE" } as unknown as Workload,
  port: 9080,
});
// No request is made in these tests, so nothing is ever dialled.
const deps = {} as UpstreamDeps;

describe("UpstreamAgents", () => {
  it("keeps one agent per endpoint and connection policy", () => {
    const agents = new UpstreamAgents(deps);
    const a = agents.agentFor(target("a"));
    expect(agents.agentFor(target("a"))).toBe(a);
    const once = { maxRequestsPerConnection: 1, idleTimeoutMs: 1000 };
    const b = agents.agentFor(target("a"), once);
    expect(b).not.toBe(a);
    expect((b as unknown as { keepAlive: boolean }).keepAlive).toBe(false);
    agents.destroy();
  });

  it("forgets agents that hold nothing when new endpoints appear, so churn does not accumulate them", () => {
    const agents = new UpstreamAgents(deps);
    const a = agents.agentFor(target("a"));
    agents.agentFor(target("b"));
    // a held no connection: it was dropped, and the endpoint gets a fresh agent.
    expect(agents.agentFor(target("a"))).not.toBe(a);
    agents.destroy();
  });
});

// Real connections to an app on 127.0.0.1 (an endpoint outside the mesh is dialled over plain TCP).
describe("UpstreamAgents pooled connections", () => {
  async function app(opts: { keepAliveTimeout: number; hint: boolean }) {
    const server = createServer({ keepAliveTimeout: opts.keepAliveTimeout }, (req, res) => {
      req.resume();
      // Set by hand, node:http sends no "Keep-Alive: timeout=" hint, as Go or Java servers do not.
      if (!opts.hint) res.setHeader("connection", "keep-alive");
      res.end(`${req.socket.remotePort}`);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return server;
  }

  function get(agents: UpstreamAgents, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const agent = agents.agentFor({ workload: plainWorkload(), port });
      const r = request({ agent, path: "/" }, (res) => {
        agents.noteResponse(agent, res);
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.once("end", () => resolve(text));
      });
      r.once("error", reject);
      r.end();
    });
  }

  it("a connection the app closes while pooled leaves the pool at once", async () => {
    const server = await app({ keepAliveTimeout: 50, hint: false });
    const port = (server.address() as AddressInfo).port;
    const agents = new UpstreamAgents(plainDeps);
    const agent = agents.agentFor({ workload: plainWorkload(), port });
    const free = () => Object.values(agent.freeSockets).flat().length;
    try {
      const first = await get(agents, port);
      expect(free()).toBe(1);
      // The app's idle timeout ends it (with no hint, the pool's own timeout would be 60 s).
      await eventually(() => expect(free()).toBe(0));
      // The next request gets a new connection, not the closed one.
      expect(await get(agents, port)).not.toBe(first);
    } finally {
      agents.destroy();
      server.closeAllConnections();
      server.close();
    }
  });

  it("keeps the app's Keep-Alive hint when it is shorter than the DestinationRule idle timeout", async () => {
    const server = await app({ keepAliveTimeout: 3_000, hint: true });
    const port = (server.address() as AddressInfo).port;
    const agents = new UpstreamAgents(plainDeps);
    const agent = agents.agentFor({ workload: plainWorkload(), port });
    try {
      await get(agents, port);
      const [socket] = Object.values(agent.freeSockets).flat();
      // The hint (3 s) less a 1 s margin, as Node's agent does; the default pool timeout is 60 s.
      expect(socket?.timeout).toBe(2_000);
    } finally {
      agents.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});
