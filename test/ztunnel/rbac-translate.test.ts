// The control plane's real translation feeding ztunnel's L4 authorization: AuthorizationPolicy and
// PeerAuthentication YAML → translate() → PolicyIndex.forWorkload → evaluate(), checked against
// the outcomes Istio documents for ambient mode (ztunnel enforces L4 fields only).

import { translate } from "@ambient/controlplane";
import { SpiffeId } from "@ambient/core";
import { type Decision, evaluate, PolicyIndex } from "@ambient/ztunnel";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { namespace, pod } from "../utils/index.js";

const WEB_IP = "10.0.0.10";
const DB_IP = "10.0.0.11";

const BASE = [
  namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
  namespace("other", { "istio.io/dataplane-mode": "ambient" }),
  pod({ name: "web", namespace: "demo", node: "n1", ip: WEB_IP, sa: "web", labels: { app: "web" } }),
  pod({ name: "db", namespace: "demo", node: "n1", ip: DB_IP, sa: "db", labels: { app: "db" } }),
];

const sa = (ns: string, name: string): SpiffeId =>
  SpiffeId.of({ trustDomain: "cluster.local", namespace: ns, serviceAccount: name });

/** The clients every scenario tries: two mTLS peers and a plaintext one. */
const CLIENTS = {
  sleep: { srcIp: "10.0.0.20", srcIdentity: sa("demo", "sleep") },
  curl: { srcIp: "10.0.1.30", srcIdentity: sa("other", "curl") },
  legacy: { srcIp: "10.1.0.5", srcIdentity: undefined },
} as const;
type Client = keyof typeof CLIENTS;

function yamlDocs(...parts: string[]): string {
  return parts.map((p) => `---\n${p}`).join("\n");
}

function authorizationPolicy(
  name: string,
  ns: string,
  spec: string,
  annotations?: Record<string, string>,
): string {
  const meta = annotations ? `\n  annotations: ${JSON.stringify(annotations)}` : "";
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: ${ns}${meta}
spec:
${spec}
`;
}

function peerAuthentication(name: string, ns: string, spec: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns} }
spec:
${spec}
`;
}

/** Translates BASE plus `manifests`, then decides connections as the destination ztunnel would. */
function mesh(...manifests: string[]) {
  const result = translate(parseAllDocuments(yamlDocs(...BASE, ...manifests)).map((d) => d.toJS()));
  const index = new PolicyIndex(result.authorizations);
  const ips: Record<string, string> = { web: WEB_IP, db: DB_IP };
  return {
    result,
    decide(client: Client, dest: "web" | "db", dstPort = 8080): Decision {
      const workload = result.workloads.find((w) => w.name === dest);
      if (!workload) throw new Error(`no workload ${dest}`);
      const { srcIp, srcIdentity } = CLIENTS[client];
      return evaluate(index.forWorkload(workload), { srcIp, dstIp: ips[dest]!, dstPort, srcIdentity });
    },
    /** allowed? for each client against web:8080 */
    verdicts(dest: "web" | "db" = "web", dstPort = 8080): Record<Client, boolean> {
      const out = {} as Record<Client, boolean>;
      for (const c of Object.keys(CLIENTS) as Client[]) out[c] = this.decide(c, dest, dstPort).allowed;
      return out;
    },
  };
}

const WEB = "  selector: { matchLabels: { app: web } }\n";

describe("translated AuthorizationPolicies, enforced at L4", () => {
  it("no policies: everything is allowed", () => {
    expect(mesh().verdicts()).toEqual({ sleep: true, curl: true, legacy: true });
  });

  it("spec: {} allows nothing; rules: [{}] allows everything", () => {
    expect(mesh(authorizationPolicy("nothing", "demo", "  {}")).verdicts()).toEqual({
      sleep: false,
      curl: false,
      legacy: false,
    });
    expect(mesh(authorizationPolicy("all", "demo", "  rules: [{}]")).verdicts()).toEqual({
      sleep: true,
      curl: true,
      legacy: true,
    });
  });

  it("principals: only the named service account, and only where the selector applies", () => {
    const m = mesh(
      authorizationPolicy(
        "sleep-only",
        "demo",
        `${WEB}  rules:\n    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/sleep"] } }]`,
      ),
    );
    expect(m.verdicts("web")).toEqual({ sleep: true, curl: false, legacy: false });
    expect(m.decide("curl", "web")).toMatchObject({
      reason: "no-allow-match",
      allowPolicies: ["demo/sleep-only"],
    });
    expect(m.verdicts("db")).toEqual({ sleep: true, curl: true, legacy: true });
  });

  it("serviceAccounts and principal wildcards", () => {
    const sas = mesh(
      authorizationPolicy(
        "sas",
        "demo",
        `  rules:\n    - from: [{ source: { serviceAccounts: ["other/curl"] } }]`,
      ),
    );
    expect(sas.verdicts()).toEqual({ sleep: false, curl: true, legacy: false });
    const prefix = mesh(
      authorizationPolicy(
        "prefix",
        "demo",
        `  rules:\n    - from: [{ source: { principals: ["cluster.local/ns/demo/*"] } }]`,
      ),
    );
    expect(prefix.verdicts()).toEqual({ sleep: true, curl: false, legacy: false });
    const any = mesh(
      authorizationPolicy("mtls", "demo", `  rules:\n    - from: [{ source: { principals: ["*"] } }]`),
    );
    expect(any.verdicts()).toEqual({ sleep: true, curl: true, legacy: false });
  });

  it("namespaces and notNamespaces", () => {
    expect(
      mesh(
        authorizationPolicy(
          "from-other",
          "demo",
          `  rules:\n    - from: [{ source: { namespaces: ["other"] } }]`,
        ),
      ).verdicts(),
    ).toEqual({ sleep: false, curl: true, legacy: false });
    // Plaintext peers have no namespace: an ALLOW on notNamespaces admits them (Istio documents
    // using `principals: ["*"]` alongside to require mTLS).
    expect(
      mesh(
        authorizationPolicy(
          "not-other",
          "demo",
          `  rules:\n    - from: [{ source: { notNamespaces: ["other"] } }]`,
        ),
      ).verdicts(),
    ).toEqual({ sleep: true, curl: false, legacy: true });
  });

  it("ipBlocks and notIpBlocks", () => {
    expect(
      mesh(
        authorizationPolicy(
          "legacy-net",
          "demo",
          `  rules:\n    - from: [{ source: { ipBlocks: ["10.1.0.0/16"] } }]`,
        ),
      ).verdicts(),
    ).toEqual({ sleep: false, curl: false, legacy: true });
    expect(
      mesh(
        authorizationPolicy(
          "pods-but-one",
          "demo",
          `  rules:\n    - from: [{ source: { ipBlocks: ["10.0.0.0/16"], notIpBlocks: ["10.0.1.30"] } }]`,
        ),
      ).verdicts(),
    ).toEqual({ sleep: true, curl: false, legacy: false });
  });

  it("ports and notPorts", () => {
    const m = mesh(
      authorizationPolicy(
        "ports",
        "demo",
        `  rules:\n    - to: [{ operation: { ports: ["8080", "8443"] } }]`,
      ),
    );
    expect(m.verdicts("web", 8080)).toEqual({ sleep: true, curl: true, legacy: true });
    expect(m.verdicts("web", 9090)).toEqual({ sleep: false, curl: false, legacy: false });
    const not = mesh(
      authorizationPolicy("not-admin", "demo", `  rules:\n    - to: [{ operation: { notPorts: ["9000"] } }]`),
    );
    expect(not.verdicts("web", 9000).sleep).toBe(false);
    expect(not.verdicts("web", 8080).sleep).toBe(true);
  });

  it("from AND to AND when; values inside a field ORed", () => {
    const m = mesh(
      authorizationPolicy(
        "combo",
        "demo",
        `  rules:
    - from: [{ source: { namespaces: ["demo"] } }, { source: { ipBlocks: ["10.1.0.0/16"] } }]
      to: [{ operation: { ports: ["8080"] } }]
      when: [{ key: destination.ip, values: ["${WEB_IP}"] }]`,
      ),
    );
    expect(m.verdicts("web", 8080)).toEqual({ sleep: true, curl: false, legacy: true });
    expect(m.verdicts("web", 9090)).toEqual({ sleep: false, curl: false, legacy: false });
    expect(m.verdicts("db", 8080)).toEqual({ sleep: false, curl: false, legacy: false });
  });

  it("DENY with notPrincipals denies every other peer, plaintext included", () => {
    const m = mesh(
      authorizationPolicy(
        "only-sleep",
        "demo",
        `  action: DENY\n  rules:\n    - from: [{ source: { notPrincipals: ["cluster.local/ns/demo/sa/sleep"] } }]`,
      ),
    );
    expect(m.verdicts()).toEqual({ sleep: true, curl: false, legacy: false });
    expect(m.decide("curl", "web")).toMatchObject({ reason: "denied-by-policy", policy: "demo/only-sleep" });
  });

  it("DENY beats ALLOW", () => {
    const m = mesh(
      authorizationPolicy("allow-all", "demo", "  rules: [{}]"),
      authorizationPolicy(
        "deny-other",
        "demo",
        `  action: DENY\n  rules:\n    - from: [{ source: { namespaces: ["other"] } }]`,
      ),
    );
    expect(m.verdicts()).toEqual({ sleep: true, curl: false, legacy: true });
  });

  it("an ALLOW rule with HTTP fields never matches at L4", () => {
    const httpOnly = mesh(
      authorizationPolicy("get-only", "demo", `  rules:\n    - to: [{ operation: { methods: ["GET"] } }]`),
    );
    expect(httpOnly.verdicts()).toEqual({ sleep: false, curl: false, legacy: false });
    const mixed = mesh(
      authorizationPolicy(
        "mixed",
        "demo",
        `  rules:
    - from: [{ source: { namespaces: ["other"] } }]
      to: [{ operation: { paths: ["/api"] } }]
    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/sleep"] } }]`,
      ),
    );
    // The first rule is dropped whole; the L4-only second rule still admits sleep.
    expect(mixed.verdicts()).toEqual({ sleep: true, curl: false, legacy: false });
  });

  it("a DENY rule loses its HTTP parts and denies more broadly", () => {
    const scoped = mesh(
      authorizationPolicy(
        "no-post-from-other",
        "demo",
        `  action: DENY\n  rules:\n    - from: [{ source: { namespaces: ["other"] } }]\n      to: [{ operation: { methods: ["POST"] } }]`,
      ),
    );
    expect(scoped.verdicts()).toEqual({ sleep: true, curl: false, legacy: true });
    const httpOnly = mesh(
      authorizationPolicy(
        "no-admin",
        "demo",
        `  action: DENY\n  rules:\n    - to: [{ operation: { paths: ["/admin"] } }]`,
      ),
    );
    expect(httpOnly.verdicts()).toEqual({ sleep: false, curl: false, legacy: false });
  });

  it("a root-namespace policy applies mesh-wide", () => {
    const m = mesh(
      authorizationPolicy(
        "no-legacy",
        "istio-system",
        `  action: DENY\n  rules:\n    - from: [{ source: { ipBlocks: ["10.1.0.0/16"] } }]`,
      ),
    );
    expect(m.verdicts("web")).toEqual({ sleep: true, curl: true, legacy: false });
    expect(m.verdicts("db")).toEqual({ sleep: true, curl: true, legacy: false });
  });

  it("dry-run policies are not enforced but are reported", () => {
    const m = mesh(
      authorizationPolicy("try-deny", "demo", `  action: DENY\n  rules: [{}]`, {
        "istio.io/dry-run": "true",
      }),
    );
    expect(m.verdicts()).toEqual({ sleep: true, curl: true, legacy: true });
    expect(m.decide("sleep", "web").dryRunDecisions).toEqual([
      { policy: "demo/try-deny", action: "DENY", matched: true },
    ]);
  });
});

describe("translated PeerAuthentication", () => {
  it("STRICT refuses plaintext and admits mTLS", () => {
    const m = mesh(peerAuthentication("strict", "demo", "  mtls: { mode: STRICT }"));
    expect(m.verdicts()).toEqual({ sleep: true, curl: true, legacy: false });
    expect(m.decide("legacy", "web")).toMatchObject({
      reason: "denied-by-policy",
      policy: "istio-system/istio_converted_static_strict",
    });
  });

  it("PERMISSIVE admits both; a STRICT port under it refuses plaintext on that port only", () => {
    const m = mesh(
      peerAuthentication(
        "web-ports",
        "demo",
        `  selector: { matchLabels: { app: web } }\n  mtls: { mode: PERMISSIVE }\n  portLevelMtls: { "9090": { mode: STRICT } }`,
      ),
    );
    expect(m.verdicts("web", 8080)).toEqual({ sleep: true, curl: true, legacy: true });
    expect(m.verdicts("web", 9090)).toEqual({ sleep: true, curl: true, legacy: false });
  });

  it("a PERMISSIVE port under STRICT admits plaintext on that port only", () => {
    const m = mesh(
      peerAuthentication("strict", "demo", "  mtls: { mode: STRICT }"),
      peerAuthentication(
        "web-metrics",
        "demo",
        `  selector: { matchLabels: { app: web } }\n  portLevelMtls: { "15090": { mode: PERMISSIVE } }`,
      ),
    );
    expect(m.verdicts("web", 8080).legacy).toBe(false);
    expect(m.verdicts("web", 15090).legacy).toBe(true);
    expect(m.verdicts("db", 15090).legacy).toBe(false);
  });

  it("STRICT plus an ALLOW policy: both must pass", () => {
    const m = mesh(
      peerAuthentication("strict", "demo", "  mtls: { mode: STRICT }"),
      authorizationPolicy(
        "from-demo",
        "demo",
        `  rules:\n    - from: [{ source: { namespaces: ["demo"] } }]`,
      ),
    );
    expect(m.verdicts()).toEqual({ sleep: true, curl: false, legacy: false });
  });
});
