import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { validateObject } from "../validate/index.js";
import { translate } from "./index.js";

function examples(): KubeObject[] {
  const dir = join(import.meta.dirname, "../../../../examples");
  const out: KubeObject[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const result = validateObject(doc.toJS());
      if (result.ok) out.push(result.object);
    }
  }
  return out;
}

/** A stable text form of the output, bytes included, to compare two runs exactly. */
function serialize(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("translate", () => {
  it("translates the demo mesh", () => {
    const result = translate(examples());
    const sleep = result.workloads.find((w) => w.name === "sleep")!;
    const httpbin = result.workloads.find((w) => w.name === "httpbin-v1")!;
    const legacy = result.workloads.find((w) => w.name === "legacy-client")!;
    expect(sleep.tunnelProtocol).toBe("HBONE");
    expect(legacy.tunnelProtocol).toBe("NONE");
    expect(httpbin.services).toEqual({
      "demo/httpbin.demo.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 8080 }] },
    });
    expect(httpbin.authorizationPolicies).toEqual([
      "demo/httpbin-allow-ingress",
      "demo/httpbin-allow-sleep",
      "istio-system/istio_converted_static_strict",
    ]);
    expect(httpbin.locality).toEqual({ region: "", zone: "zone-b", subzone: "" });
    expect(result.authorizations.map((a) => `${a.namespace}/${a.name}`)).toEqual([
      "demo/httpbin-allow-ingress",
      "demo/httpbin-allow-sleep",
      "istio-system/istio_converted_static_strict",
    ]);
    // shop's HTTPRoute reaches its waypoint as the VirtualService it is converted into; the
    // ingress gateway's VirtualService goes as written.
    expect(result.waypointConfig.virtualServices.map((o) => o.metadata.name)).toEqual([
      "httpbin",
      "httpbin-ingress",
      "httproute.reviews-canary@reviews",
    ]);
    expect(result.waypointConfig.destinationRules.map((o) => o.metadata.name)).toEqual(["httpbin"]);
    // The ingress gateway gets its Gateway and the Secret it names.
    expect(result.waypointConfig.ingress.gateways.map((o) => o.metadata.name)).toEqual(["httpbin-gateway"]);
    expect(result.waypointConfig.ingress.secrets.map((o) => o.metadata.name)).toEqual(["httpbin-credential"]);
    expect(result.warnings).toEqual([]);
  });

  it("is deterministic: input order never changes the output", () => {
    const objects = examples();
    const expected = serialize(translate(objects));
    for (const seed of [1, 2, 3]) expect(serialize(translate(shuffled(objects, seed)))).toBe(expected);
  });

  it("treats two versions of one object as one, keeping the last and warning", () => {
    const base = { kind: "RequestAuthentication", metadata: { name: "jwt", namespace: "demo" } };
    const result = translate([
      { apiVersion: "security.istio.io/v1beta1", ...base, spec: { jwtRules: [{ issuer: "old" }] } },
      { apiVersion: "security.istio.io/v1", ...base, spec: { jwtRules: [{ issuer: "new" }] } },
    ]);
    expect(result.waypointConfig.requestAuthentications).toHaveLength(1);
    expect(result.waypointConfig.requestAuthentications[0]!.spec).toEqual({ jwtRules: [{ issuer: "new" }] });
    expect(result.warnings).toHaveLength(1);
  });

  // Scale correctness only; the time it takes is measured in bench/controlplane, not asserted here.
  it("translates 10,000 pods, 1,000 services and 500 policies completely", () => {
    const objects: KubeObject[] = [];
    const namespaces = 20;
    for (let n = 0; n < namespaces; n++) {
      objects.push({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: `ns${n}`, labels: { "istio.io/dataplane-mode": "ambient" } },
      });
    }
    for (let i = 0; i < 1000; i++) {
      objects.push({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `svc${i}`, namespace: `ns${i % namespaces}` },
        spec: {
          clusterIP: `10.96.${i >> 8}.${i & 255}`,
          selector: { app: `app${i}` },
          ports: [{ name: "http", port: 80, targetPort: "http" }],
        },
      });
    }
    for (let i = 0; i < 10_000; i++) {
      const app = i % 1000;
      objects.push({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: `pod${i}`,
          namespace: `ns${app % namespaces}`,
          labels: { app: `app${app}`, tier: `t${i % 7}` },
        },
        spec: { nodeName: `node${i % 50}`, containers: [{ ports: [{ name: "http", containerPort: 8080 }] }] },
        status: { phase: "Running", podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      });
    }
    for (let i = 0; i < 500; i++) {
      objects.push({
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: `policy${i}`, namespace: i < 10 ? "istio-system" : `ns${i % namespaces}` },
        spec: {
          ...(i % 3 === 0 ? {} : { selector: { matchLabels: { app: `app${i * 2}` } } }),
          action: i % 2 ? "DENY" : "ALLOW",
          rules: [
            {
              from: [{ source: { namespaces: [`ns${i % 5}`], principals: ["cluster.local/ns/x/sa/*"] } }],
              to: [{ operation: { ports: ["8080"] } }],
            },
          ],
        },
      });
    }
    objects.push({
      apiVersion: "security.istio.io/v1",
      kind: "PeerAuthentication",
      metadata: { name: "default", namespace: "istio-system" },
      spec: { mtls: { mode: "STRICT" } },
    });

    const result = translate(objects);
    expect(result.workloads).toHaveLength(10_000);
    expect(result.services).toHaveLength(1000);
    expect(result.authorizations).toHaveLength(501);
    expect(Object.keys(result.workloads[0]!.services)).toHaveLength(1);
  });
});
