// The control plane on a temporary folder, watched live, observed through a raw Delta ADS stream:
// adds, edits (only the changed resource re-sent), removes, and a reconnect that carries
// initial_resource_versions and gets only what changed while it was away.

import { connect, createServer } from "node:net";
import { ControlPlane } from "@ambient/controlplane";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  createMemoryLogger,
  type DeltaDiscoveryResponse,
  decodeAddress,
  nodeToWire,
} from "@ambient/core";
import { RawDeltaStream } from "@ambient/core/testing";
import type { KubeObject, ObjectSource } from "@ambient/kube";
import { afterEach, describe, expect, it } from "vitest";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  service,
  startControlPlane,
  tempDir,
} from "../utils/index.js";

const NODE = nodeToWire({ id: "ztunnel~127.0.0.1~node-1", cluster: "Kubernetes", metadata: {} });
const uid = (ns: string, name: string) => `Kubernetes//Pod/${ns}/${name}`;

const base = {
  "00-cluster.yaml": docs(
    namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
    node("node-1", "127.10.1.1"),
  ),
  "10-a.yaml": pod({
    name: "a",
    namespace: "demo",
    node: "node-1",
    ip: "127.10.1.10",
    labels: { app: "a", version: "v1" },
  }),
  "11-b.yaml": pod({ name: "b", namespace: "demo", node: "node-1", ip: "127.10.1.11", labels: { app: "b" } }),
  "20-svc.yaml": service({
    name: "a",
    namespace: "demo",
    vip: "127.10.100.1",
    selector: { app: "a" },
    ports: [{ port: 80, targetPort: 8080 }],
  }),
  "30-policy.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-b, namespace: demo }
spec:
  selector: { matchLabels: { app: a } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/b"] } }]
`,
};

function names(r: DeltaDiscoveryResponse): string[] {
  return r.resources.map((x) => x.name).sort();
}

function versions(r: DeltaDiscoveryResponse): Record<string, string> {
  return Object.fromEntries(r.resources.map((x) => [x.name, x.version]));
}

describe("control plane Delta ADS on a watched folder", () => {
  let env: RunningControlPlane | undefined;
  const streams: RawDeltaStream[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await env?.stop();
    env = undefined;
  });

  function open(): RawDeltaStream {
    const s = new RawDeltaStream(env!.cp.address);
    streams.push(s);
    return s;
  }

  async function ack(s: RawDeltaStream, r: DeltaDiscoveryResponse): Promise<void> {
    s.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
  }

  it("sends everything on a wildcard subscription, then only what each file change touches", async () => {
    env = await startControlPlane(base);
    const s = open();
    s.send({ node: NODE, typeUrl: ADDRESS_TYPE_URL });
    const first = await s.next();
    expect(names(first)).toEqual([uid("demo", "a"), uid("demo", "b"), "demo/a.demo.svc.cluster.local"]);
    const svc = decodeAddress(
      first.resources.find((r) => r.name === "demo/a.demo.svc.cluster.local")!.resource!.value,
    );
    expect(svc.service?.hostname).toBe("a.demo.svc.cluster.local");
    await ack(s, first);

    // Edit: pod a's version label changes its canonical revision, nothing else.
    await env.config.write(
      "10-a.yaml",
      pod({
        name: "a",
        namespace: "demo",
        node: "node-1",
        ip: "127.10.1.10",
        labels: { app: "a", version: "v2" },
      }),
    );
    const edit = await s.next();
    expect(names(edit)).toEqual([uid("demo", "a")]);
    expect(edit.removedResources).toEqual([]);
    expect(decodeAddress(edit.resources[0]!.resource!.value).workload?.canonicalRevision).toBe("v2");
    expect(edit.nonce).not.toBe(first.nonce);
    await ack(s, edit);

    // Remove: deleting b's file removes exactly its workload.
    await env.config.remove("11-b.yaml");
    const removal = await s.next();
    expect(removal.resources).toEqual([]);
    expect(removal.removedResources).toEqual([uid("demo", "b")]);
    await ack(s, removal);

    // Add: a new file with a new pod.
    await env.config.write(
      "12-c.yaml",
      pod({ name: "c", namespace: "demo", node: "node-1", ip: "127.10.1.12" }),
    );
    const add = await s.next();
    expect(names(add)).toEqual([uid("demo", "c")]);
    await ack(s, add);

    // Touching a file without changing its objects sends nothing.
    await env.config.write(
      "12-c.yaml",
      `# comment\n${pod({ name: "c", namespace: "demo", node: "node-1", ip: "127.10.1.12" })}`,
    );
    await s.expectSilence(400);
  });

  it("serves Authorization resources and re-sends only the edited policy", async () => {
    env = await startControlPlane(base);
    const s = open();
    s.send({ node: NODE, typeUrl: AUTHORIZATION_TYPE_URL });
    const first = await s.next();
    expect(names(first)).toEqual(["demo/allow-b"]);
    await ack(s, first);
    await env.config.write("30-policy.yaml", base["30-policy.yaml"].replace("sa/b", "sa/c"));
    const edit = await s.next();
    expect(names(edit)).toEqual(["demo/allow-b"]);
    expect(edit.resources[0]!.version).not.toBe(first.resources[0]!.version);
  });

  it("a reconnect with initial_resource_versions gets only what changed while away", async () => {
    env = await startControlPlane(base);
    const s1 = open();
    s1.send({ node: NODE, typeUrl: ADDRESS_TYPE_URL });
    const first = await s1.next();
    await ack(s1, first);
    const held = versions(first);
    s1.close();

    // While the client is away: edit a, delete b. The service and everything else stay the same.
    await env.config.write(
      "10-a.yaml",
      pod({
        name: "a",
        namespace: "demo",
        node: "node-1",
        ip: "127.10.1.10",
        labels: { app: "a", version: "v9" },
      }),
    );
    await env.config.remove("11-b.yaml");
    await env.cp.reload();

    const s2 = open();
    s2.send({ node: NODE, typeUrl: ADDRESS_TYPE_URL, initialResourceVersions: held });
    const resumed = await s2.next();
    expect(names(resumed)).toEqual([uid("demo", "a")]);
    expect(resumed.removedResources).toEqual([uid("demo", "b")]);
  });

  it("holds a client that connects while it loads, and gives it the first snapshot whole", async () => {
    // A source whose first load finishes only when the test says so.
    let release!: () => void;
    const loaded = new Promise<void>((resolve) => {
      release = resolve;
    });
    const objects: KubeObject[] = [
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "demo", labels: { "istio.io/dataplane-mode": "ambient" } },
      },
      ...["a", "b"].map((name, i) => ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "demo" },
        spec: { nodeName: "node-1" },
        status: { phase: "Running", podIP: `127.10.1.${10 + i}` },
      })),
    ];
    const source: ObjectSource = {
      start: () => loaded,
      stop: async () => {},
      refresh: async () => false,
      objects: () => objects,
      problems: () => [],
      onChange: () => () => {},
    };
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const state = await tempDir("ambient-state-");
    const starting = ControlPlane.start({
      source,
      listen: { host: "127.0.0.1", port },
      stateDir: state.path,
      trustDomain: "cluster.local",
      clusterId: "Kubernetes",
      rootNamespace: "istio-system",
      logger: createMemoryLogger("debug").logger,
    });
    try {
      // The port accepts while the objects are still loading.
      await eventually(
        () =>
          new Promise<void>((resolve, reject) => {
            const socket = connect(port, "127.0.0.1", () => {
              socket.destroy();
              resolve();
            }).once("error", reject);
          }),
      );
      const s = new RawDeltaStream(`127.0.0.1:${port}`);
      streams.push(s);
      s.send({ node: NODE, typeUrl: ADDRESS_TYPE_URL });
      release();
      await starting;
      // Its first answer is the first publish, whole: not an empty or partial state.
      const first = await s.next();
      expect(names(first)).toEqual([uid("demo", "a"), uid("demo", "b")]);
    } finally {
      release();
      await starting.then((cp) => cp.stop()).catch(() => {});
      await state.cleanup();
    }
  });
});
