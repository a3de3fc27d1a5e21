import { describe, expect, it } from "vitest";
import { validateObject } from "./index.js";

function policy(spec: unknown) {
  return {
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name: "p", namespace: "demo" },
    spec,
  };
}

function problemsOf(spec: unknown) {
  const result = validateObject(policy(spec));
  return result.ok ? [] : result.problems;
}

/** The single problem `spec` produces, asserting there is exactly one. */
function onlyProblem(spec: unknown) {
  const problems = problemsOf(spec);
  expect(problems).toHaveLength(1);
  return problems[0]!;
}

const rule = (source: Record<string, unknown>) => ({ rules: [{ from: [{ source }] }] });

describe("AuthorizationPolicy validation", () => {
  it("accepts the common shapes", () => {
    expect(problemsOf({})).toEqual([]);
    expect(problemsOf({ rules: [{}] })).toEqual([]);
    expect(problemsOf({ action: "DENY", rules: [] })).toEqual([]); // pointless but valid
    expect(problemsOf({ action: "DENY" })).toEqual([]);
    expect(
      problemsOf({
        selector: { matchLabels: { app: "web" } },
        rules: [
          {
            from: [
              {
                source: { principals: ["cluster.local/ns/a/sa/b", "*"], ipBlocks: ["10.0.0.0/8", "fd00::1"] },
              },
            ],
            to: [{ operation: { ports: ["8080"], methods: ["GET"] } }],
            when: [
              { key: "request.headers[x-user]", values: ["a"] },
              { key: "source.serviceAccount", notValues: ["ns/sa"] },
              { key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"] },
            ],
          },
        ],
      }),
    ).toEqual([]);
    expect(
      problemsOf({ targetRefs: [{ kind: "Gateway", group: "gateway.networking.k8s.io", name: "waypoint" }] }),
    ).toEqual([]);
    expect(
      problemsOf({
        action: "CUSTOM",
        provider: { name: "ext-authz" },
        rules: [{ to: [{ operation: { paths: ["/admin"] } }] }],
      }),
    ).toEqual([]);
  });

  it("action must be ALLOW, DENY, AUDIT or CUSTOM", () => {
    expect(onlyProblem({ action: "REJECT" })).toEqual({
      path: "spec.action",
      message: "must be one of ALLOW, DENY, AUDIT, CUSTOM",
    });
  });

  it("CUSTOM needs a provider, and only CUSTOM may have one", () => {
    expect(onlyProblem({ action: "CUSTOM", rules: [{}] }).path).toBe("spec.provider.name");
    expect(onlyProblem({ action: "CUSTOM", provider: { name: "x" } }).path).toBe("spec.rules");
    expect(onlyProblem({ action: "DENY", provider: { name: "x" }, rules: [{}] }).path).toBe("spec.provider");
  });

  it("CUSTOM cannot match on identities", () => {
    const problems = problemsOf({
      action: "CUSTOM",
      provider: { name: "x" },
      rules: [
        {
          from: [{ source: { namespaces: ["a"] } }],
          when: [{ key: "request.auth.principal", values: ["x"] }],
        },
      ],
    });
    expect(problems.map((p) => p.path)).toEqual([
      "spec.rules[0].from[0].source.namespaces",
      "spec.rules[0].when[0].key",
    ]);
  });

  it("selector and targetRef/targetRefs are mutually exclusive", () => {
    const ref = { kind: "Service", group: "", name: "web" };
    expect(onlyProblem({ selector: { matchLabels: { app: "x" } }, targetRefs: [ref] })).toEqual({
      path: "spec.targetRefs",
      message: "cannot be combined with selector; set only one",
    });
    expect(onlyProblem({ selector: { matchLabels: { app: "x" } }, targetRef: ref }).path).toBe(
      "spec.targetRef",
    );
  });

  it("selectors have no wildcards or empty keys", () => {
    expect(onlyProblem({ selector: { matchLabels: { app: "web-*" } } }).path).toBe(
      "spec.selector.matchLabels.app",
    );
  });

  it("source cannot combine serviceAccounts with principals or namespaces", () => {
    const p = onlyProblem(rule({ principals: ["a"], serviceAccounts: ["ns/sa"] }));
    expect(p).toEqual({
      path: "spec.rules[0].from[0].source.serviceAccounts",
      message: "cannot be combined with principals in the same source",
    });
    expect(onlyProblem(rule({ namespaces: ["a"], notServiceAccounts: ["ns/sa"] })).path).toBe(
      "spec.rules[0].from[0].source.notServiceAccounts",
    );
  });

  it("service accounts are ns/name or a bare name", () => {
    const problems = problemsOf(rule({ serviceAccounts: ["a/b/c", "/sa", "ns/", "ok", "ns/ok"] }));
    expect(problems.map((p) => p.path)).toEqual(
      [0, 1, 2].map((i) => `spec.rules[0].from[0].source.serviceAccounts[${i}]`),
    );
  });

  it("values must not be empty strings, with the exact index", () => {
    expect(onlyProblem(rule({ principals: ["a", ""] }))).toEqual({
      path: "spec.rules[0].from[0].source.principals[1]",
      message: "must not be empty",
    });
    expect(onlyProblem({ rules: [{ to: [{ operation: { methods: ["GET", ""] } }] }] }).path).toBe(
      "spec.rules[0].to[0].operation.methods[1]",
    );
    expect(onlyProblem({ rules: [{ when: [{ key: "source.namespace", values: [""] }] }] }).path).toBe(
      "spec.rules[0].when[0].values[0]",
    );
  });

  it("ports are decimal strings from 1 to 65535", () => {
    const problems = problemsOf({
      rules: [{ to: [{ operation: { ports: ["80", "0", "65536", "http", " 80"], notPorts: ["-1"] } }] }],
    });
    expect(problems.map((p) => p.path)).toEqual([
      "spec.rules[0].to[0].operation.ports[1]",
      "spec.rules[0].to[0].operation.ports[2]",
      "spec.rules[0].to[0].operation.ports[3]",
      "spec.rules[0].to[0].operation.ports[4]",
      "spec.rules[0].to[0].operation.notPorts[0]",
    ]);
    expect(onlyProblem({ rules: [{ to: [{ operation: { ports: [80] } }] }] })).toEqual({
      path: "spec.rules[0].to[0].operation.ports[0]",
      message: "must be a string",
    });
  });

  it("ipBlocks hold IPs or CIDRs", () => {
    const problems = problemsOf(
      rule({ ipBlocks: ["10.0.0.0/8", "10.0.0.0/33"], notIpBlocks: ["fd00::/8", "host"] }),
    );
    expect(problems.map((p) => p.path)).toEqual([
      "spec.rules[0].from[0].source.ipBlocks[1]",
      "spec.rules[0].from[0].source.notIpBlocks[1]",
    ]);
    expect(onlyProblem({ rules: [{ when: [{ key: "destination.ip", notValues: ["1.2.3"] }] }] }).path).toBe(
      "spec.rules[0].when[0].notValues[0]",
    );
  });

  it("when keys must be supported and have values or notValues", () => {
    expect(onlyProblem({ rules: [{ when: [{ key: "source.user", values: ["a"] }] }] }).path).toBe(
      "spec.rules[0].when[0].key",
    );
    expect(onlyProblem({ rules: [{ when: [{ key: "request.headers", values: ["a"] }] }] }).message).toContain(
      "request.headers[<name>]",
    );
    expect(
      onlyProblem({ rules: [{ when: [{ key: "destination.labels[app]", values: ["a"] }] }] }).message,
    ).toContain("workload selector");
    expect(onlyProblem({ rules: [{ when: [{ key: "source.ip" }] }] })).toEqual({
      path: "spec.rules[0].when[0]",
      message: "must set values or notValues",
    });
    expect(onlyProblem({ rules: [{ when: [{ key: "destination.port", values: ["x"] }] }] }).path).toBe(
      "spec.rules[0].when[0].values[0]",
    );
  });

  it("from/to must not be empty lists, and sources/operations must set something", () => {
    expect(onlyProblem({ rules: [{ from: [] }] }).path).toBe("spec.rules[0].from");
    expect(onlyProblem({ rules: [{ to: [] }] }).path).toBe("spec.rules[0].to");
    expect(onlyProblem({ rules: [{ from: [{}] }] })).toEqual({
      path: "spec.rules[0].from[0].source",
      message: "is required",
    });
    expect(onlyProblem({ rules: [{ from: [{ source: {} }] }] }).path).toBe("spec.rules[0].from[0].source");
    expect(onlyProblem({ rules: [{ to: [{ operation: {} }] }] }).path).toBe("spec.rules[0].to[0].operation");
  });
});
