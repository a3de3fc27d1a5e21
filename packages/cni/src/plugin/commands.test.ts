// The plugin's commands through main(), with the agent and the filesystem replaced by stubs.
import { describe, expect, it } from "vitest";
import { type AgentAnswer, AgentCallError } from "./agent-client.js";
import { podIps } from "./commands.js";
import { main } from "./main.js";
import { CniCode } from "./spec.js";

const ENV = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/var/run/netns/ambient-demo-web",
  CNI_IFNAME: "eth0",
  CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web",
  CNI_PATH: "/usr/lib/cni",
};
const PREV = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "cni0", mac: "aa" },
    { name: "veth1", mac: "bb" },
    { name: "eth0", mac: "cc", sandbox: "/x" },
  ],
  ips: [{ address: "198.19.1.5/24", gateway: "198.19.1.1", interface: 2 }],
  routes: [{ dst: "0.0.0.0/0" }],
  dns: {},
};

interface Call {
  method: string;
  path: string;
  body: unknown;
}

async function run(opts: {
  env?: Record<string, string | undefined>;
  conf?: Record<string, unknown>;
  agent?: (call: Call) => AgentAnswer;
  netnsExists?: boolean;
}) {
  const calls: Call[] = [];
  let stdout = "";
  let stderr = "";
  const conf = {
    cniVersion: "1.0.0",
    name: "pods",
    type: "ambient-cni",
    agentSocket: "/run/test.sock",
    ...opts.conf,
  };
  const code = await main(
    { ...ENV, ...opts.env },
    {
      readStdin: async () => JSON.stringify(conf),
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
    },
    {
      callAgent: async (_socket, method, path, body) => {
        calls.push({ method, path, body });
        if (!opts.agent)
          throw new AgentCallError(
            "unreachable",
            "cannot reach the node agent at /run/test.sock: ENOENT",
            "ENOENT",
          );
        return opts.agent({ method, path, body });
      },
      netnsExists: () => opts.netnsExists ?? true,
    },
  );
  return { code, out: stdout ? JSON.parse(stdout) : undefined, stderr, calls };
}

const ok = (): AgentAnswer => ({ status: 200, body: { ok: true, enrolled: true } });

describe("ADD", () => {
  it("tells the agent and prints prevResult unchanged", async () => {
    const r = await run({ conf: { prevResult: PREV }, agent: ok });
    expect(r.code).toBe(0);
    expect(r.out).toEqual(PREV);
    expect(r.calls).toEqual([
      {
        method: "POST",
        path: "/v1/cni/add",
        body: {
          containerId: "c1",
          netns: ENV.CNI_NETNS,
          ifName: "eth0",
          podName: "web",
          podNamespace: "demo",
          ips: ["198.19.1.5"],
        },
      },
    ]);
  });

  it("without prevResult prints an empty result of the config's version and sends no IPs", async () => {
    const r = await run({ conf: { cniVersion: "0.4.0" }, agent: ok });
    expect(r.out).toEqual({ cniVersion: "0.4.0", interfaces: [], ips: [], dns: {} });
    expect(r.calls[0]?.body).toMatchObject({ ips: [] });
  });

  it("excluded namespaces, excluded pods and non-Kubernetes sandboxes pass through without the agent", async () => {
    for (const env of [
      { CNI_ARGS: "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns" },
      { CNI_ARGS: "K8S_POD_NAMESPACE=istio-system;K8S_POD_NAME=ztunnel-x1" },
      { CNI_ARGS: "" },
    ]) {
      const r = await run({ env, conf: { prevResult: PREV } });
      expect(r.code).toBe(0);
      expect(r.out).toEqual(PREV);
      expect(r.calls).toEqual([]);
      expect(r.stderr).toContain("not telling the node agent");
    }
  });

  it("an unreachable agent is code 11 naming the socket", async () => {
    const r = await run({});
    expect(r.code).toBe(1);
    expect(r.out.code).toBe(CniCode.TRY_AGAIN_LATER);
    expect(r.out.msg).toContain("/run/test.sock");
    expect(r.out.msg).toContain("demo/web");
  });

  it("a missing netns is code 3 and the agent is not asked", async () => {
    const r = await run({ netnsExists: false, agent: ok });
    expect(r.out.code).toBe(CniCode.UNKNOWN_CONTAINER);
    expect(r.out.msg).toContain(ENV.CNI_NETNS);
    expect(r.calls).toEqual([]);
  });

  it("an agent error is code 100 carrying its message; a non-protocol answer is 101", async () => {
    const refused = await run({ agent: () => ({ status: 400, body: { error: "network namespace gone" } }) });
    expect(refused.out).toMatchObject({
      code: CniCode.AGENT_REJECTED,
      details: "HTTP 400 from /run/test.sock",
    });
    expect(refused.out.msg).toContain("network namespace gone");
    const odd = await run({ agent: () => ({ status: 200, body: { hello: 1 } }) });
    expect(odd.out.code).toBe(CniCode.AGENT_PROTOCOL);
  });

  it("a malformed prevResult is code 7", async () => {
    const r = await run({ conf: { prevResult: { ips: [{ address: "nope" }] } }, agent: ok });
    expect(r.out.code).toBe(CniCode.INVALID_CONFIG);
    expect(r.out.msg).toContain("prevResult.ips[0].address");
  });
});

describe("DEL", () => {
  it("tells the agent, without netns when the runtime has none", async () => {
    const r = await run({ env: { CNI_COMMAND: "DEL", CNI_NETNS: "" }, agent: ok });
    expect(r.code).toBe(0);
    expect(r.out).toBeUndefined();
    expect(r.calls[0]).toEqual({
      method: "POST",
      path: "/v1/cni/del",
      body: { containerId: "c1", ifName: "eth0", podName: "web", podNamespace: "demo" },
    });
  });

  it("succeeds with a log line when the agent is unreachable or fails", async () => {
    const gone = await run({ env: { CNI_COMMAND: "DEL" } });
    expect(gone.code).toBe(0);
    expect(gone.stderr).toContain("/run/test.sock");
    const failing = await run({
      env: { CNI_COMMAND: "DEL" },
      agent: () => ({ status: 500, body: { error: "x" } }),
    });
    expect(failing.code).toBe(0);
    expect(failing.stderr).toContain("HTTP 500");
  });
});

describe("CHECK, STATUS, GC", () => {
  it("CHECK succeeds silently from 0.4.0 and is code 1 before", async () => {
    expect((await run({ env: { CNI_COMMAND: "CHECK" }, conf: { prevResult: PREV } })).code).toBe(0);
    const old = await run({ env: { CNI_COMMAND: "CHECK" }, conf: { cniVersion: "0.3.1" } });
    expect(old.out.code).toBe(CniCode.INCOMPATIBLE_VERSION);
  });

  it("STATUS asks the agent: ready → success, gone → code 50", async () => {
    const env = {
      CNI_COMMAND: "STATUS",
      CNI_CONTAINERID: undefined,
      CNI_NETNS: undefined,
      CNI_IFNAME: undefined,
    };
    const ready = await run({ env, conf: { cniVersion: "1.1.0" }, agent: ok });
    expect(ready.code).toBe(0);
    expect(ready.calls[0]).toMatchObject({ method: "GET", path: "/v1/cni/status" });
    const gone = await run({ env, conf: { cniVersion: "1.1.0" } });
    expect(gone.out.code).toBe(CniCode.NOT_AVAILABLE);
    expect((await run({ env, conf: { cniVersion: "1.0.0" }, agent: ok })).out.code).toBe(
      CniCode.INCOMPATIBLE_VERSION,
    );
  });

  it("GC succeeds from 1.1.0 without the agent", async () => {
    const r = await run({ env: { CNI_COMMAND: "GC" }, conf: { cniVersion: "1.1.0" } });
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([]);
  });
});

describe("pod IPs from prevResult", () => {
  it("drops host-side interfaces' IPs, keeps sandbox and unattached ones, strips prefixes", () => {
    expect(
      podIps({
        interfaces: [{ name: "cni0" }, { name: "eth0", sandbox: "/x" }],
        ips: [
          { address: "198.19.1.1/24", interface: 0 },
          { address: "198.19.1.5/24", interface: 1 },
          { address: "fd00::5/64", interface: 1 },
          { version: "4", address: "10.0.0.9/8" },
        ],
      }),
    ).toEqual(["198.19.1.5", "fd00::5", "10.0.0.9"]);
  });
});
