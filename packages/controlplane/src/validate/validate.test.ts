import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { validateObject } from "./index.js";

function problemsOf(obj: unknown) {
  const result = validateObject(obj);
  return result.ok ? [] : result.problems;
}

const pod = (extra: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "demo" },
  spec: { nodeName: "node-1", containers: [{ name: "app", ports: [{ name: "http", containerPort: 8080 }] }] },
  status: { phase: "Running", podIP: "10.0.0.5" },
  ...extra,
});

describe("validateObject: structure", () => {
  it("accepts every example manifest shipped with the project", () => {
    const dir = join(import.meta.dirname, "../../../../examples");
    let count = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
        const value = doc.toJS();
        if (value == null) continue;
        expect(problemsOf(value), `${file}: ${value.kind}/${value.metadata?.name}`).toEqual([]);
        count++;
      }
    }
    expect(count).toBeGreaterThan(10);
  });

  it("reports an unknown kind once, at kind, listing the supported kinds", () => {
    const problems = problemsOf({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: "kind", code: "AMB_OBJECT_UNKNOWN_KIND" });
    expect(problems[0]!.message).toContain("Deployment");
    expect(problems[0]!.message).toContain(
      "AuthorizationPolicy (security.istio.io/v1, security.istio.io/v1beta1)",
    );
  });

  it("does not take Istio's networking Gateway for the Gateway API's", () => {
    // Istio's rules (servers), not the Gateway API's (gatewayClassName, listeners).
    const problems = problemsOf({
      apiVersion: "networking.istio.io/v1",
      kind: "Gateway",
      metadata: { name: "x" },
    });
    expect(problems.map((p) => p.path)).toEqual(["spec.servers"]);
  });

  it("reports an unsupported version at apiVersion", () => {
    const problems = problemsOf({
      apiVersion: "security.istio.io/v2",
      kind: "PeerAuthentication",
      metadata: { name: "x" },
    });
    expect(problems).toEqual([
      {
        path: "apiVersion",
        message: expect.stringContaining("security.istio.io/v1, security.istio.io/v1beta1"),
      },
    ]);
  });

  it("requires apiVersion, kind and metadata.name", () => {
    expect(problemsOf({ metadata: {} }).map((p) => p.path)).toEqual(["apiVersion", "kind", "metadata.name"]);
    expect(problemsOf({ apiVersion: "v1", kind: "Pod" }).map((p) => p.path)).toEqual(["metadata"]);
    expect(problemsOf("Pod")).toEqual([{ path: "", message: expect.stringContaining("mapping") }]);
  });

  it("holds names to DNS rules, Service names to DNS-1035 labels", () => {
    expect(problemsOf(pod({ metadata: { name: "Web_1" } }))[0]?.path).toBe("metadata.name");
    expect(problemsOf(pod({ metadata: { name: "web.v1" } }))).toEqual([]);
    const svc = { apiVersion: "v1", kind: "Service", metadata: { name: "1web" } };
    expect(problemsOf(svc)).toEqual([
      { path: "metadata.name", message: expect.stringContaining("DNS-1035") },
    ]);
    expect(problemsOf({ apiVersion: "v1", kind: "Namespace", metadata: { name: "a.b" } })[0]?.path).toBe(
      "metadata.name",
    );
  });

  it("catches unquoted numeric label values and bad label keys", () => {
    const problems = problemsOf(pod({ metadata: { name: "web", labels: { version: 2, "bad key": "x" } } }));
    expect(problems).toEqual([
      { path: "metadata.labels.version", message: expect.stringContaining('quote the value (version: "2")') },
      { path: 'metadata.labels["bad key"]', message: expect.stringContaining("label key") },
    ]);
  });

  it("reports every problem of an object together", () => {
    const problems = problemsOf({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "Bad_Name", namespace: "demo" },
      spec: {
        action: "CUSTOM",
        rules: [{ from: [{ source: { principals: [""] } }], to: [{ operation: { ports: ["http"] } }] }],
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      "metadata.name",
      "spec.provider.name",
      "spec.rules[0].from[0].source.principals",
      "spec.rules[0].from[0].source.principals[0]",
      "spec.rules[0].to[0].operation.ports[0]",
    ]);
  });

  it("fills in the default namespace on success", () => {
    const result = validateObject({ apiVersion: "v1", kind: "Service", metadata: { name: "s" } });
    expect(result.ok && result.object.metadata.namespace).toBe("default");
    const node = validateObject({ apiVersion: "v1", kind: "Node", metadata: { name: "n" } });
    expect(node.ok && node.object.metadata.namespace).toBeUndefined();
  });
});

describe("validateObject: core kinds", () => {
  it("accepts a typical pod", () => {
    expect(problemsOf(pod())).toEqual([]);
  });

  it("checks the pod fields translation reads", () => {
    const problems = problemsOf(
      pod({
        spec: {
          nodeName: 7,
          hostNetwork: "yes",
          containers: [{ ports: [{ containerPort: "80", name: "HTTP" }] }],
        },
        status: {
          podIP: "10.0.0.300",
          podIPs: [{ ip: "fd00::1" }, { ip: "nope" }],
          conditions: [{ type: "Ready", status: true }],
        },
      }),
    );
    expect(problems.map((p) => p.path)).toEqual([
      "spec.nodeName",
      "spec.hostNetwork",
      "spec.containers[0].ports[0].containerPort",
      "spec.containers[0].ports[0].name",
      "status.podIP",
      "status.podIPs[1].ip",
      "status.conditions[0].status",
    ]);
  });

  it("checks service ports, target ports and cluster IPs", () => {
    const problems = problemsOf({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: {
        clusterIP: "10.96.0.300",
        selector: { app: "web", version: 1 },
        ports: [
          { name: "http", port: 0, targetPort: "Http_Port" },
          { name: "http", port: 443, targetPort: 70000 },
          { port: 8080, targetPort: "metrics" },
        ],
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      "spec.clusterIP",
      "spec.selector.version",
      "spec.ports[0].port",
      "spec.ports[0].targetPort",
      "spec.ports[1].targetPort",
      "spec.ports[1].name",
      "spec.ports[2].name",
    ]);
  });

  it("accepts headless services and named or absent target ports", () => {
    const svc = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: {
        clusterIP: "None",
        ports: [
          { name: "http", port: 80, targetPort: "http" },
          { name: "tcp", port: 9000 },
        ],
      },
    };
    expect(problemsOf(svc)).toEqual([]);
  });

  it("checks node addresses", () => {
    const problems = problemsOf({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1" },
      status: {
        addresses: [
          { type: "InternalIP", address: "127.0.0.999" },
          { type: "Hostname", address: "n1" },
          { address: "" },
        ],
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      "status.addresses[0].address",
      "status.addresses[2].type",
      "status.addresses[2].address",
    ]);
  });
});
