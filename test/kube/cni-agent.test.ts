// The CNI node agent in Kubernetes mode against the test API server, driven with the real kubectl:
// a pod of this node in an ambient namespace is marked on its status subresource; `kubectl label`
// on a namespace enrols and unenrols running pods; a pod it cannot capture gets a Warning event
// FailedCapture (kubectl get events / describe pod); a pod of another node is never seen; excluded
// namespaces are never enrolled; it keeps working across an API server restart; /readyz says
// ready once every phase is done. iptables is the agent's fake here (test/netns runs the real rules).

import { mkdir } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import {
  type NodePod,
  parseAgentConfig,
  REDIRECTION_ANNOTATION,
  type Redirection,
  runNodeAgent,
} from "@ambient/cni";
import { createMemoryLogger, encodeLine, LineReader, parseAgentMessage } from "@ambient/core";
import { startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";

/** Any path that exists stands in for a pod's netns: the fake redirection never enters it. */
const NETNS = "/proc/self/ns/net";
const AMBIENT = { "istio.io/dataplane-mode": "ambient" };

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});
const pod = (namespace: string, name: string, node = "node-a", labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels },
  spec: { nodeName: node, containers: [{ name: "app", image: "app" }] },
});

class FakeRedirection implements Redirection {
  readonly rules = new Set<string>();
  /** Pods whose rules cannot be written (as iptables-restore failing in their netns). */
  readonly broken = new Set<string>();
  async enable(p: NodePod) {
    if (this.broken.has(`${p.namespace}/${p.name}`)) throw new Error("iptables-restore: exit status 4");
    this.rules.add(`${p.namespace}/${p.name}`);
  }
  async disable(p: NodePod) {
    this.rules.delete(`${p.namespace}/${p.name}`);
  }
  async probes() {}
}

/** A ztunnel stand-in on the agent's socket that acknowledges everything. */
function fakeZtunnel(path: string): Promise<Socket> {
  const socket = connect({ path });
  const reader = new LineReader(
    (line) => socket.write(encodeLine({ id: parseAgentMessage(line).id, type: "ack" })),
    () => {},
  );
  socket.on("data", (c) => reader.push(c));
  return new Promise((resolve) => socket.once("connect", () => resolve(socket)));
}

let api: TestApiServer;
let dir: TempDir;
let kube: KubeClients;
let redirection: FakeRedirection;
let cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  api = await startTestApiServer({
    objects: [
      ns("demo", AMBIENT),
      ns("plain"),
      ns("legacy", AMBIENT),
      pod("demo", "web"),
      pod("demo", "late"),
      pod("demo", "remote", "node-b"),
      pod("plain", "app"),
      pod("legacy", "old"),
      pod("kube-system", "dns", "node-a", AMBIENT),
    ] as never,
  });
  dir = await tempDir("ambient-cni-kube-");
  kube = await kubeClients(api.kubeconfigPath);
  redirection = new FakeRedirection();
  cleanups = [() => api.stop(), () => dir.cleanup(), () => kube.cleanup()];
});

afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startAgent() {
  const confDir = join(dir.path, "net.d");
  await mkdir(confDir);
  await dir.write(
    "net.d/10-bridge.conflist",
    JSON.stringify({ cniVersion: "1.0.0", name: "k8s", plugins: [{ type: "bridge" }] }),
  );
  const config = parseAgentConfig(
    [
      "--node-name",
      "node-a",
      "--kubeconfig",
      api.kubeconfigPath,
      "--exclude-namespaces",
      "legacy",
      "--cni-bin-dir",
      join(dir.path, "bin"),
      "--cni-conf-dir",
      confDir,
      "--cni-socket",
      join(dir.path, "cni.sock"),
      "--ztunnel-socket",
      join(dir.path, "ztunnel.sock"),
      "--state-dir",
      join(dir.path, "state"),
      "--readiness-port",
      "0",
    ],
    {},
  );
  const { logger, records } = createMemoryLogger("debug");
  const running = await runNodeAgent(config, logger, {
    redirection,
    kubeBackoff: { initialMs: 50, maxMs: 200 },
  });
  cleanups.push(() => running.stop());
  const z = await fakeZtunnel(join(dir.path, "ztunnel.sock"));
  cleanups.push(() => z.destroy());
  const add = (namespace: string, name: string) =>
    running.agent.cniAdd({
      containerId: `c-${name}`,
      netns: NETNS,
      ifName: "eth0",
      podName: name,
      podNamespace: namespace,
      ips: ["10.0.0.9"],
    });
  return { running, add, logs: records };
}

/** The annotation as the real kubectl prints it ("" when absent). */
async function annotation(namespace: string, name: string): Promise<string> {
  const path = `{.metadata.annotations.${REDIRECTION_ANNOTATION.replaceAll(".", "\\.")}}`;
  const r = await kube.kubectl(["get", "pod", name, "-n", namespace, "-o", `jsonpath=${path}`]);
  expect(r.stderr).toBe("");
  return r.stdout;
}

describe("CNI node agent against the Kubernetes API", () => {
  it("marks a pod of its node in an ambient namespace with a merge patch of pods/status, and is ready", async () => {
    const { running, add } = await startAgent();
    const readyz = await fetch(`http://127.0.0.1:${running.readinessPort}/readyz`);
    expect([readyz.status, await readyz.text()]).toEqual([200, "ok\n"]);

    await expect(add("demo", "web")).resolves.toEqual({ enrolled: true });
    expect(redirection.rules).toEqual(new Set(["demo/web"]));
    await eventually(async () => expect(await annotation("demo", "web")).toBe("enabled"));
    expect(
      api.requests.filter((r) => r.method === "PATCH").map((r) => [r.path, r.contentType, r.status]),
    ).toEqual([["/api/v1/namespaces/demo/pods/web/status", "application/merge-patch+json", 200]]);
  });

  it("records a Warning event FailedCapture on a pod whose traffic it could not redirect", async () => {
    const { add } = await startAgent();
    redirection.broken.add("demo/late");
    await expect(add("demo", "late")).rejects.toMatchObject({ status: 500 });
    const events = await eventually(async () => {
      const r = await kube.kubectl(["get", "events", "-n", "demo", "-o", "json"]);
      expect(r.code).toBe(0);
      const items = (JSON.parse(r.stdout) as { items: Record<string, unknown>[] }).items;
      expect(items).toHaveLength(1);
      return items;
    });
    expect(events[0]).toMatchObject({
      type: "Warning",
      reason: "FailedCapture",
      involvedObject: { kind: "Pod", namespace: "demo", name: "late" },
      source: { component: "ambient-cni", host: "node-a" },
    });
    expect(events[0]!.message).toContain("cannot write redirection rules for demo/late");
    expect(events[0]!.message).toContain("iptables-restore: exit status 4");
    // kubectl describe shows it under the pod's Events.
    const described = await kube.kubectl(["describe", "pod", "late", "-n", "demo"]);
    expect(described.stdout).toMatch(/Warning\s+FailedCapture/);
  });

  it("enrols running pods when `kubectl label` marks their namespace, and unenrols them when it is removed", async () => {
    const { add } = await startAgent();
    await expect(add("plain", "app")).resolves.toEqual({ enrolled: false });
    expect(await annotation("plain", "app")).toBe("");

    expect(
      (await kube.kubectl(["label", "namespace", "plain", "istio.io/dataplane-mode=ambient"])).code,
    ).toBe(0);
    await eventually(async () => expect(await annotation("plain", "app")).toBe("enabled"));
    expect(redirection.rules.has("plain/app")).toBe(true);

    expect((await kube.kubectl(["label", "namespace", "plain", "istio.io/dataplane-mode-"])).code).toBe(0);
    await eventually(async () => expect(await annotation("plain", "app")).toBe(""));
    expect(redirection.rules.has("plain/app")).toBe(false);
  });

  it("never sees a pod of another node: every pod list and watch asks for its node only", async () => {
    const { add } = await startAgent();
    await expect(add("demo", "remote")).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining("pod demo/remote is not known to the cluster source on node node-a"),
    });
    const podRequests = api.requests.filter((r) => r.path === "/api/v1/pods");
    expect(podRequests.length).toBeGreaterThan(0);
    for (const r of podRequests)
      expect(new URLSearchParams(r.query).get("fieldSelector")).toBe("spec.nodeName=node-a");
    expect(await annotation("demo", "remote")).toBe("");
  });

  it("never enrols a pod in an excluded namespace, kube-system always among them", async () => {
    const { add } = await startAgent();
    await expect(add("legacy", "old")).resolves.toEqual({ enrolled: false });
    await expect(add("kube-system", "dns")).resolves.toEqual({ enrolled: false });
    // A label change re-decides every pod: still not enrolled.
    await kube.kubectl(["label", "namespace", "legacy", "touched=yes"]);
    await add("demo", "web");
    await eventually(async () => expect(await annotation("demo", "web")).toBe("enabled"));
    expect(await annotation("legacy", "old")).toBe("");
    expect(await annotation("kube-system", "dns")).toBe("");
    expect(redirection.rules).toEqual(new Set(["demo/web"]));
  });

  it("answers /readyz 503 with the phase it waits for while the API server cannot be listed", async () => {
    const restarted = api.restart(60_000);
    const { logger, records } = createMemoryLogger("debug");
    const config = parseAgentConfig(
      [
        "--node-name",
        "node-a",
        "--kubeconfig",
        api.kubeconfigPath,
        "--install-plugin=false",
        "--cni-socket",
        join(dir.path, "cni.sock"),
        "--ztunnel-socket",
        join(dir.path, "ztunnel.sock"),
        "--state-dir",
        join(dir.path, "state"),
        "--readiness-port",
        "0",
      ],
      {},
    );
    const starting = runNodeAgent(config, logger, {
      redirection,
      kubeBackoff: { initialMs: 50, maxMs: 200 },
    });
    cleanups.push(async () => (await starting).stop());
    let port = 0;
    await eventually(() => {
      port = records.find((r) => r.msg === "readiness on /readyz")?.port as number;
      expect(port).toBeGreaterThan(0);
    });
    const probe = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return [res.status, await res.text()];
    };
    expect(await probe()).toEqual([
      503,
      expect.stringContaining(
        "not ready: the Kubernetes API has not been listed yet; not yet listening for ztunnel",
      ),
    ]);
    api.endDowntime();
    await restarted;
    await starting;
    expect(await probe()).toEqual([200, "ok\n"]);
  });

  it("keeps working across an API server restart: a mark made while it is down lands, later labels apply", async () => {
    const { add, logs } = await startAgent();
    const restarted = api.restart(60_000);
    await eventually(() =>
      expect(logs.some((l) => /lost the Kubernetes API server/.test(String(l.msg)))).toBe(true),
    );
    // The agent decides from what it last saw; the patch waits for the API server.
    await expect(add("demo", "late")).resolves.toEqual({ enrolled: true });
    await eventually(() => expect(logs.some((l) => /cannot annotate pods/.test(String(l.msg)))).toBe(true));
    api.endDowntime();
    await restarted;
    await eventually(async () => expect(await annotation("demo", "late")).toBe("enabled"));

    await add("plain", "app");
    expect(
      (await kube.kubectl(["label", "namespace", "plain", "istio.io/dataplane-mode=ambient"])).code,
    ).toBe(0);
    await eventually(async () => expect(await annotation("plain", "app")).toBe("enabled"));
  });
});
