import type { Workload } from "@ambient/core";
import { describe, expect, it } from "vitest";
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
