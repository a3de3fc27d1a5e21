import { describe, expect, it } from "vitest";
import { validateObject } from "./index.js";

function problemsOf(kind: string, spec: unknown) {
  const result = validateObject({
    apiVersion: "security.istio.io/v1beta1",
    kind,
    metadata: { name: "p", namespace: "demo" },
    spec,
  });
  return result.ok ? [] : result.problems;
}

const selector = { matchLabels: { app: "web" } };

describe("PeerAuthentication validation", () => {
  it("accepts mesh, namespace and workload policies", () => {
    expect(problemsOf("PeerAuthentication", { mtls: { mode: "STRICT" } })).toEqual([]);
    expect(problemsOf("PeerAuthentication", {})).toEqual([]);
    expect(
      problemsOf("PeerAuthentication", {
        selector,
        mtls: { mode: "UNSET" },
        portLevelMtls: { "8080": { mode: "DISABLE" } },
      }),
    ).toEqual([]);
  });

  it("mtls.mode must be UNSET, DISABLE, PERMISSIVE or STRICT", () => {
    expect(problemsOf("PeerAuthentication", { mtls: { mode: "ON" } })).toEqual([
      { path: "spec.mtls.mode", message: "must be one of UNSET, DISABLE, PERMISSIVE, STRICT" },
    ]);
    expect(
      problemsOf("PeerAuthentication", { selector, portLevelMtls: { "80": { mode: "strict" } } }),
    ).toEqual([
      { path: 'spec.portLevelMtls["80"].mode', message: "must be one of UNSET, DISABLE, PERMISSIVE, STRICT" },
    ]);
  });

  it("portLevelMtls requires a selector", () => {
    expect(problemsOf("PeerAuthentication", { portLevelMtls: { "80": { mode: "STRICT" } } })).toEqual([
      { path: "spec.portLevelMtls", message: expect.stringContaining("requires a selector") },
    ]);
    expect(
      problemsOf("PeerAuthentication", { selector: {}, portLevelMtls: { "80": { mode: "STRICT" } } })[0]
        ?.path,
    ).toBe("spec.portLevelMtls");
  });

  it("port keys are 1-65535", () => {
    const problems = problemsOf("PeerAuthentication", {
      selector,
      portLevelMtls: {
        "0": { mode: "STRICT" },
        "65536": { mode: "STRICT" },
        http: { mode: "STRICT" },
        "443": { mode: "STRICT" },
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      'spec.portLevelMtls["0"]',
      'spec.portLevelMtls["65536"]',
      "spec.portLevelMtls.http",
    ]);
  });
});

describe("RequestAuthentication validation", () => {
  it("accepts issuer with jwksUri or inline jwks", () => {
    expect(
      problemsOf("RequestAuthentication", {
        jwtRules: [{ issuer: "https://issuer", jwksUri: "https://issuer/jwks" }],
      }),
    ).toEqual([]);
    expect(
      problemsOf("RequestAuthentication", { jwtRules: [{ issuer: "me", jwks: '{"keys":[]}' }] }),
    ).toEqual([]);
  });

  it("each jwt rule needs an issuer", () => {
    expect(
      problemsOf("RequestAuthentication", { jwtRules: [{ issuer: "a" }, { jwksUri: "https://x/jwks" }] }),
    ).toEqual([{ path: "spec.jwtRules[1].issuer", message: expect.stringContaining("is required") }]);
  });

  it("jwks and jwksUri are mutually exclusive", () => {
    const problems = problemsOf("RequestAuthentication", {
      jwtRules: [{ issuer: "a", jwks: '{"keys":[]}', jwksUri: "https://x/jwks" }],
    });
    expect(problems).toEqual([
      { path: "spec.jwtRules[0].jwks", message: "cannot be combined with jwksUri; set only one" },
    ]);
  });

  it("checks the jwks URI scheme and the inline JWKS", () => {
    const problems = problemsOf("RequestAuthentication", {
      jwtRules: [
        { issuer: "a", jwksUri: "ftp://x/jwks" },
        { issuer: "b", jwks: "{not json" },
        { issuer: "c", audiences: [""], fromHeaders: [{ prefix: "Bearer " }] },
      ],
    });
    expect(problems.map((p) => p.path).sort()).toEqual([
      "spec.jwtRules[0].jwksUri",
      "spec.jwtRules[1].jwks",
      "spec.jwtRules[2].audiences[0]",
      "spec.jwtRules[2].fromHeaders[0].name",
    ]);
  });
});
