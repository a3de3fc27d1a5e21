// A folder with broken content: malformed YAML, an unknown kind, an invalid AuthorizationPolicy.
// The control plane keeps serving the valid objects, logs each problem once with file and path,
// and keeps the last good version of an object that turns invalid. And bad clients on its gRPC port
// (garbage, HTTP/1, a silent client, a stream flood): closed and logged once, others still served.

import { once } from "node:events";
import { Socket } from "node:net";
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, L7_RESOURCE_TYPE_URL, nodeToWire } from "@ambient/core";
import { RawDeltaStream } from "@ambient/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RawH2, Setting } from "../utils/h2-raw.js";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  startControlPlane,
} from "../utils/index.js";

const GOOD_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-sleep, namespace: demo }
spec:
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/sleep"] } }]
`;

const BAD_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-sleep, namespace: demo }
spec:
  action: PERMIT
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/sleep"], serviceAccounts: ["demo/sleep"] } }]
`;

function errors(logs: Record<string, unknown>[]): Record<string, unknown>[] {
  return logs.filter((l) => l["level"] === "error");
}

describe("bad input in the manifests folder", () => {
  let env: RunningControlPlane | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it("serves the valid objects and reports each problem with file, document and path", async () => {
    env = await startControlPlane(
      {
        "00-good.yaml": docs(
          namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
          node("node-1", "127.10.1.1"),
          pod({ name: "sleep", namespace: "demo", node: "node-1", ip: "127.10.1.10" }),
        ),
        "10-malformed.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
        "20-unknown.yaml":
          "apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w, namespace: demo }\n",
        "30-policy.yaml": docs(GOOD_POLICY.replace("allow-sleep", "ok-policy"), BAD_POLICY),
      },
      { watch: false },
    );
    const snap = env.cp.snapshot;
    expect(snap.workloads.map((w) => w.name)).toEqual(["sleep"]);
    expect(snap.authorizations.map((a) => a.name)).toEqual(["ok-policy"]);

    const errs = errors(env.logs);
    const malformed = errs.find((e) => e["file"] === "10-malformed.yaml");
    expect(malformed?.["msg"]).toMatch(
      /^10-malformed.yaml#0: malformed YAML \(line \d+, column \d+\): Flow sequence/,
    );
    const unknown = errs.find((e) => e["file"] === "20-unknown.yaml");
    expect(unknown?.["path"]).toBe("kind");
    expect(unknown?.["msg"]).toMatch(/Widget/);
    const policyErrs = errs.filter((e) => e["file"] === "30-policy.yaml");
    expect(policyErrs.every((e) => e["document"] === 1)).toBe(true);
    const paths = policyErrs.map((e) => e["path"]);
    expect(paths).toContain("spec.action");
    expect(paths.some((p) => String(p).startsWith("spec.rules[0].from[0].source"))).toBe(true);
  });

  it("keeps the last good version of an object that becomes invalid, and logs the problem once", async () => {
    env = await startControlPlane(
      {
        "00-good.yaml": docs(namespace("demo"), node("node-1", "127.10.1.1")),
        "30-policy.yaml": GOOD_POLICY,
      },
      { watch: false },
    );
    const before = env.cp.store.get(AUTHORIZATION_TYPE_URL, "demo/allow-sleep");
    expect(before).toBeDefined();

    await env.config.write("30-policy.yaml", BAD_POLICY);
    await env.cp.reload();
    await env.cp.reload(); // the same problem again: no second log line
    expect(env.cp.store.get(AUTHORIZATION_TYPE_URL, "demo/allow-sleep")?.version).toBe(before!.version);
    const actionErrors = errors(env.logs).filter((e) => e["path"] === "spec.action");
    expect(actionErrors).toHaveLength(1);

    // A file that stops parsing keeps all of its objects too.
    await env.config.write("30-policy.yaml", "kind: [");
    await env.cp.reload();
    expect(env.cp.store.get(AUTHORIZATION_TYPE_URL, "demo/allow-sleep")?.version).toBe(before!.version);

    // Fixing the file applies the new version.
    await env.config.write("30-policy.yaml", GOOD_POLICY.replace("sa/sleep", "sa/other"));
    await env.cp.reload();
    await eventually(() =>
      expect(env!.cp.store.get(AUTHORIZATION_TYPE_URL, "demo/allow-sleep")?.version).not.toBe(
        before!.version,
      ),
    );
  });

  it("a deleted file takes its objects away, even ones that were last good", async () => {
    env = await startControlPlane(
      {
        "00-good.yaml": docs(namespace("demo"), node("node-1", "127.10.1.1")),
        "30-policy.yaml": GOOD_POLICY,
      },
      { watch: false },
    );
    await env.config.remove("30-policy.yaml");
    await env.cp.reload();
    expect(env.cp.store.get(AUTHORIZATION_TYPE_URL, "demo/allow-sleep")).toBeUndefined();
  });
});

describe("bad L7 objects for waypoints", () => {
  let env: RunningControlPlane | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  const goodVs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: demo }
spec:
  hosts: [reviews]
  http:
    - route:
        - { destination: { host: reviews, subset: v1 }, weight: 90 }
        - { destination: { host: reviews, subset: v2 }, weight: 10 }
`;
  const goodDr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: demo }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

  it("reports each invalid field with file and path and keeps the last good VirtualService and DestinationRule", async () => {
    env = await startControlPlane(
      { "00.yaml": namespace("demo"), "10-vs.yaml": goodVs, "20-dr.yaml": goodDr },
      { watch: false },
    );
    const vsBefore = env.cp.store.get(L7_RESOURCE_TYPE_URL, "VirtualService/demo/reviews");
    const drBefore = env.cp.store.get(L7_RESOURCE_TYPE_URL, "DestinationRule/demo/reviews");
    expect(vsBefore && drBefore).toBeTruthy();

    await env.config.write(
      "10-vs.yaml",
      goodVs
        .replace("weight: 90", "weight: 0")
        .replace("weight: 10", "weight: 0")
        .replace("    - route:", '    - match: [{ uri: { regex: "(unclosed" } }]\n      route:'),
    );
    await env.config.write(
      "20-dr.yaml",
      goodDr
        .replace("name: v2", "name: v1")
        .replace("host: reviews", "host: reviews\n  trafficPolicy: { loadBalancer: { simple: FASTEST } }"),
    );
    await env.cp.reload();

    const errs = errors(env.logs);
    const vsPaths = errs.filter((e) => e["file"] === "10-vs.yaml").map((e) => String(e["path"]));
    expect(vsPaths.some((p) => p.startsWith("spec.http[0].route"))).toBe(true);
    expect(vsPaths.some((p) => p.startsWith("spec.http[0].match[0].uri"))).toBe(true);
    const drPaths = errs.filter((e) => e["file"] === "20-dr.yaml").map((e) => String(e["path"]));
    expect(drPaths.some((p) => p.startsWith("spec.subsets[1]"))).toBe(true);
    expect(drPaths.some((p) => p.startsWith("spec.trafficPolicy.loadBalancer"))).toBe(true);
    // The waypoints keep being served the last good versions.
    expect(env.cp.store.get(L7_RESOURCE_TYPE_URL, "VirtualService/demo/reviews")?.version).toBe(
      vsBefore!.version,
    );
    expect(env.cp.store.get(L7_RESOURCE_TYPE_URL, "DestinationRule/demo/reviews")?.version).toBe(
      drBefore!.version,
    );
  });
});

describe("bad clients on the gRPC port", () => {
  let env: RunningControlPlane;
  beforeAll(async () => {
    env = await startControlPlane(
      {
        "00-good.yaml": docs(
          namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
          node("node-1", "127.10.1.1"),
          pod({ name: "sleep", namespace: "demo", node: "node-1", ip: "127.10.1.10" }),
        ),
      },
      { watch: false, prefaceTimeoutMs: 500 },
    );
  });
  afterAll(async () => env?.stop());

  function address(): { host: string; port: number } {
    const [host, port] = env.cp.address.split(":");
    return { host: host!, port: Number(port) };
  }

  /** A Delta ADS client still gets its workloads. */
  async function stillServed(): Promise<void> {
    const s = new RawDeltaStream(env.cp.address);
    try {
      s.send({
        node: nodeToWire({ id: "ztunnel~127.10.1.1~node-1", cluster: "Kubernetes", metadata: {} }),
        typeUrl: ADDRESS_TYPE_URL,
      });
      expect((await s.next()).resources.map((r) => r.name)).toEqual(["Kubernetes//Pod/demo/sleep"]);
    } finally {
      s.close();
    }
  }

  /** Sends `bytes` (or nothing) and resolves with what came back once the server closed. */
  async function exchange(bytes?: string): Promise<string> {
    const s = new Socket();
    s.on("error", () => {});
    s.connect(address());
    await once(s, "connect");
    const got: Buffer[] = [];
    s.on("data", (c: Buffer) => got.push(c));
    if (bytes) s.write(bytes);
    await once(s, "close");
    return Buffer.concat(got).toString("latin1");
  }

  function loggedOnce(code: string): Promise<void> {
    return eventually(() => expect(env.logs.filter((l) => l["code"] === code)).toHaveLength(1));
  }

  it("garbage bytes: closed, logged once", async () => {
    expect(await exchange("\x16\x03\x01 hello, not HTTP/2 at all\r\n\r\n")).toBe("");
    await loggedOnce("AMB_CP_NOT_HTTP2");
    await stillServed();
  });

  it("an HTTP/1 request: answered 505 naming the protocol, logged once", async () => {
    const answer = await exchange("GET /debug HTTP/1.1\r\nHost: istiod\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 505 /);
    expect(answer).toMatch(/gRPC: HTTP\/2 with prior knowledge/);
    await loggedOnce("AMB_CP_HTTP1");
    await stillServed();
  });

  it("a client that never sends: closed after the preface timeout, logged once", async () => {
    expect(await exchange()).toBe("");
    await loggedOnce("AMB_CP_PREFACE_TIMEOUT");
    await stillServed();
  });

  it("a stream flood: the connection is ended at the advertised limit, memory stays bounded", async () => {
    const h = await RawH2.connectPlain(address());
    expect(h.serverSettings.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(100);
    const rss = process.memoryUsage().rss;
    const fields: [string, string][] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"],
      [":authority", env.cp.address],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    // Streams that stay open: each would be a Delta ADS call held by the server.
    for (let batch = 0; batch < 20 && !h.isClosed; batch++) {
      h.write(
        Buffer.concat(
          Array.from({ length: 1000 }, (_, i) => h.headersFrame(1 + 2 * (batch * 1000 + i), fields)),
        ),
      );
      await new Promise((r) => setImmediate(r));
    }
    await h.closed;
    // Unlimited before: 20,000 held calls cost ~130 MB and the connection stayed.
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
    await stillServed();
  });
});
