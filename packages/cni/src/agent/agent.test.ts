import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentMessage, createLogger, encodeLine, LineReader, parseAgentMessage } from "@ambient/core";
import type { Namespace, Pod } from "@ambient/kube";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentError, NodeAgent, type Redirection } from "./agent.js";
import { FileAnnotator } from "./annotations.js";
import type { ClusterSource } from "./cluster-source.js";
import type { NodePod } from "./pod-registry.js";
import { PodRegistry } from "./pod-registry.js";
import { ZtunnelServer } from "./ztunnel-server.js";

const logger = createLogger({ level: "silent" });
/** Any path that exists stands in for a netns in these tests; the real ones are in test/netns. */
const NETNS = "/proc/self/ns/net";

class FakeSource implements ClusterSource {
  pods = new Map<string, Pod>();
  namespaces = new Map<string, Namespace>();
  private listeners: Array<() => void> = [];
  pod(ns: string, name: string) {
    return this.pods.get(`${ns}/${name}`);
  }
  namespace(name: string) {
    return this.namespaces.get(name);
  }
  onChange(l: () => void) {
    this.listeners.push(l);
  }
  changed() {
    for (const l of this.listeners) l();
  }
  refreshes = 0;
  async refresh() {
    this.refreshes++;
  }
  async start() {}
  async stop() {}
  setNamespace(name: string, labels: Record<string, string>) {
    this.namespaces.set(name, { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
  }
  setPod(ns: string, name: string, labels: Record<string, string> = {}) {
    this.pods.set(`${ns}/${name}`, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: ns, labels },
      spec: { nodeName: "node-a" },
    } as Pod);
  }
}

class FakeRedirection implements Redirection {
  rules = new Map<string, number>();
  enables = 0;
  probeIps: string[] = [];
  async enable(pod: NodePod) {
    this.enables++;
    this.rules.set(`${pod.namespace}/${pod.name}`, 1); // a rewrite, never an append
  }
  async disable(pod: NodePod) {
    this.rules.delete(`${pod.namespace}/${pod.name}`);
  }
  async probes(ips: string[]) {
    this.probeIps = [...ips];
  }
}

/** A ztunnel stand-in: acks everything and records what it was told. */
class FakeZtunnel {
  messages: AgentMessage[] = [];
  socket: Socket;
  constructor(path: string) {
    this.socket = connect({ path });
    const r = new LineReader(
      (line) => {
        const m = parseAgentMessage(line);
        this.messages.push(m);
        this.socket.write(encodeLine({ id: m.id, type: "ack" }));
      },
      () => {},
    );
    this.socket.on("data", (c) => r.push(c));
  }
  ready() {
    return new Promise<void>((resolve) => this.socket.once("connect", () => resolve()));
  }
  close() {
    this.socket.destroy();
  }
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};

describe("NodeAgent", () => {
  let dir: string;
  let source: FakeSource;
  let redirection: FakeRedirection;
  let server: ZtunnelServer;
  let agent: NodeAgent;
  const ztunnels: FakeZtunnel[] = [];

  async function startAgent() {
    const registry = new PodRegistry(join(dir, "state"));
    let a: NodeAgent | undefined;
    server = new ZtunnelServer(join(dir, "ztunnel.sock"), () => a?.enrolledPods() ?? [], logger);
    await server.start();
    a = new NodeAgent({
      nodeName: "node-a",
      clusterId: "Kubernetes",
      source,
      registry,
      redirection,
      ztunnels: server,
      annotator: new FileAnnotator(join(dir, "state")),
      excludeNamespaces: ["kube-system"],
      logger,
    });
    await a.start();
    agent = a;
  }

  async function ztunnel() {
    const z = new FakeZtunnel(join(dir, "ztunnel.sock"));
    ztunnels.push(z);
    await z.ready();
    await until(() => server.connected > 0);
    return z;
  }

  const add = (ns: string, name: string, ip: string, netns = NETNS) =>
    agent.cniAdd({
      containerId: `c-${name}`,
      netns,
      ifName: "eth0",
      podName: name,
      podNamespace: ns,
      ips: [ip],
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "amb-agent-"));
    source = new FakeSource();
    redirection = new FakeRedirection();
    source.setNamespace("demo", { "istio.io/dataplane-mode": "ambient" });
    source.setNamespace("legacy", {});
    source.setPod("demo", "sleep");
    source.setPod("demo", "optout", { "istio.io/dataplane-mode": "none" });
    source.setPod("legacy", "old");
    await startAgent();
  });

  afterEach(async () => {
    for (const z of ztunnels.splice(0)) z.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("enrols an ambient pod on ADD: rules, ztunnel add, annotation, probe SNAT", async () => {
    const z = await ztunnel();
    await expect(add("demo", "sleep", "198.19.1.5")).resolves.toEqual({ enrolled: true });
    expect(redirection.rules.has("demo/sleep")).toBe(true);
    expect(redirection.probeIps).toEqual(["198.19.1.5"]);
    const adds = z.messages.filter((m) => m.type === "add");
    expect(adds).toHaveLength(1);
    expect(adds[0]).toMatchObject({
      pod: { uid: "Kubernetes//Pod/demo/sleep", netns: NETNS, ips: ["198.19.1.5"] },
    });
    const annotations = JSON.parse(readFileSync(join(dir, "state", "annotations.json"), "utf8"));
    expect(annotations["demo/sleep"]).toEqual({ "ambient.istio.io/redirection": "enabled" });
  });

  it("leaves out pods labelled none, non-ambient namespaces and excluded namespaces", async () => {
    await ztunnel();
    source.setPod("kube-system", "dns", { "istio.io/dataplane-mode": "ambient" });
    for (const [ns, name] of [
      ["demo", "optout"],
      ["legacy", "old"],
      ["kube-system", "dns"],
    ] as const) {
      await expect(add(ns, name, "198.19.1.9")).resolves.toEqual({ enrolled: false });
    }
    expect(redirection.rules.size).toBe(0);
  });

  it("fails the ADD of an ambient pod when no ztunnel is connected, and leaves no rules", async () => {
    const err = await add("demo", "sleep", "198.19.1.5").catch((e) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err.status).toBe(503);
    expect(err.message).toMatch(/no ztunnel is connected/);
    expect(redirection.rules.size).toBe(0);
  });

  it("refuses an ADD for a netns that does not exist", async () => {
    await ztunnel();
    const err = await add("demo", "sleep", "198.19.1.5", "/var/run/netns/amb-no-such-ns").catch((e) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/network namespace \/var\/run\/netns\/amb-no-such-ns does not exist/);
  });

  it("refuses an ADD for a pod the cluster source does not know, after catching up once", async () => {
    await ztunnel();
    const err = await add("demo", "ghost", "198.19.1.6").catch((e) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/pod demo\/ghost is not known to the cluster source/);
    expect(source.refreshes).toBe(1);
    expect(redirection.rules.size).toBe(0);
  });

  it("enrols a running pod when its namespace is labelled, unenrols it when unlabelled", async () => {
    const z = await ztunnel();
    await add("legacy", "old", "198.19.1.7");
    expect(redirection.rules.size).toBe(0);
    source.setNamespace("legacy", { "istio.io/dataplane-mode": "ambient" });
    source.changed();
    await agent.reconcileAll();
    expect(redirection.rules.has("legacy/old")).toBe(true);
    expect(z.messages.some((m) => m.type === "add" && m.pod.name === "old")).toBe(true);
    source.setNamespace("legacy", {});
    source.changed();
    await agent.reconcileAll();
    expect(redirection.rules.has("legacy/old")).toBe(false);
    expect(z.messages.some((m) => m.type === "del" && m.uid === "Kubernetes//Pod/legacy/old")).toBe(true);
    expect(redirection.probeIps).toEqual([]);
  });

  it("DEL is idempotent and tells ztunnel once", async () => {
    const z = await ztunnel();
    await add("demo", "sleep", "198.19.1.5");
    const del = { containerId: "c-sleep", ifName: "eth0", podName: "sleep", podNamespace: "demo" };
    await agent.cniDel(del);
    await agent.cniDel(del);
    expect(z.messages.filter((m) => m.type === "del")).toHaveLength(1);
    expect(redirection.rules.size).toBe(0);
  });

  it("replays enrolled pods and a snapshot marker to every ztunnel that connects", async () => {
    await ztunnel();
    await add("demo", "sleep", "198.19.1.5");
    const second = await ztunnel();
    await until(() => second.messages.some((m) => m.type === "snapshot"));
    expect(second.messages.map((m) => m.type)).toEqual(["add", "snapshot"]);
  });

  it("after a restart, rewrites rules for enrolled pods (no duplicates) and forgets pods whose netns is gone", async () => {
    await ztunnel();
    await add("demo", "sleep", "198.19.1.5");
    // A pod whose sandbox disappeared while the agent was down.
    source.setPod("demo", "ghost");
    await add("demo", "ghost", "198.19.1.6");
    const registry = new PodRegistry(join(dir, "state"));
    await registry.load();
    const ghost = registry.get("demo", "ghost")!;
    await registry.put({ ...ghost, netns: "/var/run/netns/amb-gone" });
    for (const z of ztunnels.splice(0)) z.close();
    await server.close();

    await startAgent();
    const z = await ztunnel();
    await until(() => z.messages.some((m) => m.type === "snapshot"));
    expect(
      z.messages.filter((m) => m.type === "add").map((m) => (m.type === "add" ? m.pod.name : "")),
    ).toEqual(["sleep"]);
    expect(redirection.rules.get("demo/sleep")).toBe(1);
    expect(agent.enrolledPods().map((p) => p.name)).toEqual(["sleep"]);
  });

  it("answers garbage on the ztunnel socket with an error and closes only that connection", async () => {
    const good = await ztunnel();
    const bad = connect({ path: join(dir, "ztunnel.sock") });
    const got: string[] = [];
    bad.on("data", (c) => got.push(c.toString()));
    await new Promise<void>((r) => bad.once("connect", () => r()));
    bad.write("GET / HTTP/1.1\r\n\r\n");
    await new Promise<void>((r) => bad.once("close", () => r()));
    expect(got.join("")).toMatch(/"type":"error".*not JSON/);
    await add("demo", "sleep", "198.19.1.5");
    expect(good.messages.some((m) => m.type === "add")).toBe(true);
  });
});
