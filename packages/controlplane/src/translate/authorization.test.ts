import { type Authorization, emptyMatch, type Match } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { translate } from "./index.js";

function load(text: string): KubeObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as KubeObject);
}

function policy(spec: string, meta: { name?: string; namespace?: string; extra?: string } = {}): string {
  return `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${meta.name ?? "p"}
  namespace: ${meta.namespace ?? "demo"}
${meta.extra ?? ""}
spec:
${spec}
`;
}

function authz(text: string): Authorization[] {
  return translate(load(text)).authorizations;
}

function only(spec: string): Authorization {
  const list = authz(policy(spec));
  expect(list).toHaveLength(1);
  return list[0]!;
}

const m = (fields: Partial<Match>): Match => ({ ...emptyMatch(), ...fields });
const v4 = (a: number, b: number, c: number, d: number, length = 32) => ({
  address: new Uint8Array([a, b, c, d]),
  length,
});

const pod = (name: string, ns: string, labels: string) => `
---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: ${labels} }
status: { podIP: 10.0.0.${name.length} }
`;

describe("AuthorizationPolicy → Authorization", () => {
  describe("scope", () => {
    const text =
      policy("  action: DENY\n  rules: [{}]", { name: "mesh", namespace: "istio-system" }) +
      policy("  rules: [{}]", { name: "ns-wide" }) +
      policy("  selector: { matchLabels: { app: web } }\n  rules: [{}]", { name: "web-only" }) +
      policy("  selector: { matchLabels: { tier: db } }\n  rules: [{}]", {
        name: "all-db",
        namespace: "istio-system",
      }) +
      pod("web", "demo", "{ app: web }") +
      pod("db", "demo", "{ tier: db }") +
      pod("otherdb", "other", "{ tier: db, app: web }");

    it("is GLOBAL in the root namespace, NAMESPACE without selector, WORKLOAD_SELECTOR with one", () => {
      const byName = Object.fromEntries(authz(text).map((a) => [a.name, a]));
      expect(byName.mesh).toMatchObject({ scope: "GLOBAL", namespace: "istio-system", action: "DENY" });
      expect(byName["ns-wide"]).toMatchObject({ scope: "NAMESPACE", namespace: "demo", action: "ALLOW" });
      expect(byName["web-only"]).toMatchObject({ scope: "WORKLOAD_SELECTOR" });
      expect(byName["all-db"]).toMatchObject({ scope: "WORKLOAD_SELECTOR", namespace: "istio-system" });
    });

    it("lists selector policies on the workloads they select, root-namespace ones in every namespace", () => {
      const lists = Object.fromEntries(
        translate(load(text)).workloads.map((w) => [w.name, w.authorizationPolicies]),
      );
      expect(lists).toEqual({
        web: ["demo/web-only"],
        db: ["istio-system/all-db"],
        otherdb: ["istio-system/all-db"], // demo/web-only stays in demo
      });
    });

    it("honours the configured root namespace", () => {
      const [a] = translate(load(policy("  rules: [{}]", { namespace: "mesh-root" })), {
        rootNamespace: "mesh-root",
      }).authorizations;
      expect(a!.scope).toBe("GLOBAL");
    });
  });

  it("spec: {} allows nothing; rules: [{}] matches everything", () => {
    expect(only("  {}").rules).toEqual([]);
    expect(only("  rules: [{}]").rules).toEqual([{ clauses: [] }]);
  });

  it("turns from, to and each when into ANDed clauses, with ORed matches inside", () => {
    const a = only(`  rules:
    - from:
        - source: { principals: [cluster.local/ns/a/sa/x] }
        - source: { namespaces: [b] }
      to:
        - operation: { ports: ["80", "443"] }
      when:
        - { key: source.ip, values: [10.0.0.0/8] }
        - { key: destination.port, notValues: ["8080"] }`);
    expect(a.rules).toEqual([
      {
        clauses: [
          {
            matches: [
              m({ principals: [{ exact: "cluster.local/ns/a/sa/x" }] }),
              m({ namespaces: [{ exact: "b" }] }),
            ],
          },
          { matches: [m({ destinationPorts: [80, 443] })] },
          { matches: [m({ sourceIps: [v4(10, 0, 0, 0, 8)] })] },
          { matches: [m({ notDestinationPorts: [8080] })] },
        ],
      },
    ]);
  });

  it("maps Istio's wildcards to presence, prefix and suffix matches", () => {
    const a = only(
      "  rules: [{ from: [{ source: { principals: ['*', 'cluster.local/ns/a/*', '*/sa/admin', exact] } }] }]",
    );
    expect(a.rules[0]!.clauses[0]!.matches[0]!.principals).toEqual([
      { presence: {} },
      { prefix: "cluster.local/ns/a/" },
      { suffix: "/sa/admin" },
      { exact: "exact" },
    ]);
  });

  it("translates every negative field", () => {
    const a = only(`  action: DENY
  rules:
    - from: [{ source: { notPrincipals: [p], notNamespaces: [n], notIpBlocks: [10.1.0.0/16] } }]
      to: [{ operation: { notPorts: ["22"] } }]
      when:
        - { key: source.ip, notValues: [10.2.0.1] }
        - { key: source.namespace, notValues: [kube-system] }
        - { key: source.principal, notValues: ["*"] }
        - { key: destination.ip, notValues: [10.3.0.0/24] }
        - { key: source.serviceAccount, notValues: [ops/admin] }`);
    expect(a.rules[0]!.clauses.map((c) => c.matches)).toEqual([
      [
        m({
          notPrincipals: [{ exact: "p" }],
          notNamespaces: [{ exact: "n" }],
          notSourceIps: [v4(10, 1, 0, 0, 16)],
        }),
      ],
      [m({ notDestinationPorts: [22] })],
      [m({ notSourceIps: [v4(10, 2, 0, 1)] })],
      [m({ notNamespaces: [{ exact: "kube-system" }] })],
      [m({ notPrincipals: [{ presence: {} }] })],
      [m({ notDestinationIps: [v4(10, 3, 0, 0, 24)] })],
      [m({ notPrincipals: [{ exact: "cluster.local/ns/ops/sa/admin" }] })],
    ]);
  });

  it("keeps CIDR lengths, and makes bare addresses host routes, for IPv4 and IPv6", () => {
    const a = only(
      "  rules: [{ from: [{ source: { ipBlocks: [10.0.0.0/8, 10.1.2.3, 'fd00::/8', 'fd00::1'] } }] }]",
    );
    const ips = a.rules[0]!.clauses[0]!.matches[0]!.sourceIps;
    expect(ips.map((ip) => [ip.address.length, ip.length])).toEqual([
      [4, 8],
      [4, 32],
      [16, 8],
      [16, 128],
    ]);
    expect(ips[2]!.address[0]).toBe(0xfd);
  });

  it("turns when destination.ip and source.namespace values into positive matches", () => {
    const a = only(
      "  rules: [{ when: [{ key: destination.ip, values: [10.9.0.1] }, { key: source.namespace, values: [a, 'b*'] }] }]",
    );
    expect(a.rules[0]!.clauses.map((c) => c.matches)).toEqual([
      [m({ destinationIps: [v4(10, 9, 0, 1)] })],
      [m({ namespaces: [{ exact: "a" }, { prefix: "b" }] })],
    ]);
  });

  it("turns serviceAccounts into exact principals in the trust domain", () => {
    const text = policy("  rules: [{ from: [{ source: { serviceAccounts: [ops/admin, local-sa] } }] }]");
    const [a] = translate(load(text), { trustDomain: "example.org" }).authorizations;
    expect(a!.rules[0]!.clauses[0]!.matches[0]!.principals).toEqual([
      { exact: "example.org/ns/ops/sa/admin" },
      { exact: "example.org/ns/demo/sa/local-sa" },
    ]);
  });

  describe("HTTP attributes", () => {
    it("ALLOW: a rule using any HTTP attribute never matches at L4 and is dropped", () => {
      const a = only(`  rules:
    - from: [{ source: { principals: [a] } }]
      to: [{ operation: { methods: [GET] } }]
    - from: [{ source: { namespaces: [b] } }]`);
      expect(a.rules).toEqual([{ clauses: [{ matches: [m({ namespaces: [{ exact: "b" }] })] }] }]);
    });

    it("ALLOW: a policy whose every rule uses HTTP attributes allows nothing, with a warning", () => {
      const result = translate(
        load(
          policy(
            "  rules:\n    - to: [{ operation: { paths: [/admin] } }]\n    - when: [{ key: request.auth.principal, values: [x] }]",
          ),
        ),
      );
      expect(result.authorizations[0]!.rules).toEqual([]);
      expect(result.warnings).toEqual([
        {
          object: "security.istio.io/AuthorizationPolicy/demo/p",
          message: expect.stringContaining("found: paths, request.auth.principal"),
        },
      ]);
    });

    it("ALLOW: remoteIpBlocks and remote.ip are HTTP-only (they come from X-Forwarded-For)", () => {
      expect(only("  rules: [{ from: [{ source: { remoteIpBlocks: [1.2.3.4] } }] }]").rules).toEqual([]);
      expect(only("  rules: [{ when: [{ key: remote.ip, values: [1.2.3.4] }] }]").rules).toEqual([]);
    });

    it("DENY: drops only the HTTP parts, denying more rather than less", () => {
      const a = only(`  action: DENY
  rules:
    - from: [{ source: { principals: [a], requestPrincipals: ["*"] } }]
      to: [{ operation: { methods: [DELETE] } }]
      when: [{ key: "request.headers[x-debug]", values: ["1"] }, { key: destination.port, values: ["80"] }]`);
      expect(a.rules).toEqual([
        {
          clauses: [
            { matches: [m({ principals: [{ exact: "a" }] })] },
            { matches: [m({ destinationPorts: [80] })] },
          ],
        },
      ]);
    });

    it("DENY: a rule with only HTTP conditions denies everything", () => {
      const a = only("  action: DENY\n  rules: [{ to: [{ operation: { paths: [/admin] } }] }]");
      expect(a.rules).toEqual([{ clauses: [] }]);
    });

    it("DENY: an HTTP-only alternative in a from list makes the whole from clause match", () => {
      const a = only(`  action: DENY
  rules:
    - from: [{ source: { namespaces: [a] } }, { source: { requestPrincipals: [x] } }]
      to: [{ operation: { ports: ["22"] } }]`);
      expect(a.rules).toEqual([{ clauses: [{ matches: [m({ destinationPorts: [22] })] }] }]);
    });
  });

  it("leaves CUSTOM and AUDIT to others, with a warning, and sends targetRefs policies to waypoints", () => {
    const text =
      policy("  action: CUSTOM\n  provider: { name: ext }\n  rules: [{}]", { name: "custom" }) +
      policy("  action: AUDIT\n  rules: [{}]", { name: "audit" }) +
      policy("  targetRefs: [{ kind: Service, group: '', name: web }]\n  rules: [{}]", { name: "l7" }) +
      policy("  targetRef: { kind: Gateway, group: gateway.networking.k8s.io, name: wp }", {
        name: "l7-single",
      });
    const result = translate(load(text));
    expect(result.authorizations).toEqual([]);
    expect(result.waypointConfig.authorizationPolicies.map((p) => p.metadata.name)).toEqual([
      "l7",
      "l7-single",
    ]);
    expect(result.warnings.map((w) => w.message)).toEqual([
      expect.stringContaining("AUDIT action"),
      expect.stringContaining("CUSTOM action"),
    ]);
  });

  it("sets dryRun from istio.io/dry-run", () => {
    const list = authz(policy("  rules: [{}]", { extra: '  annotations: { istio.io/dry-run: "true" }' }));
    expect(list[0]!.dryRun).toBe(true);
    expect(only("  rules: [{}]").dryRun).toBe(false);
  });

  it("warns about principals written with the spiffe:// scheme", () => {
    const result = translate(
      load(policy("  rules: [{ from: [{ source: { principals: [spiffe://cluster.local/ns/a/sa/b] } }] }]")),
    );
    expect(result.warnings[0]!.message).toContain("omit the scheme");
  });
});
