import { describe, expect, it } from "vitest";
import { validateObject } from "./index.js";

const GW = "gateway.networking.k8s.io";

function problemsOf(kind: string, spec: unknown, apiVersion = `${GW}/v1`) {
  const result = validateObject({ apiVersion, kind, metadata: { name: "r", namespace: "demo" }, spec });
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

const parentRefs = [{ group: "", kind: "Service", name: "reviews", port: 9080 }];
const http = (rules: unknown[], apiVersion?: string) =>
  problemsOf("HTTPRoute", { parentRefs, rules }, apiVersion);

describe("HTTPRoute validation", () => {
  it("accepts a canary split with filters, in v1 and v1beta1", () => {
    const rules = [
      {
        matches: [{ path: { type: "PathPrefix", value: "/api" }, headers: [{ name: "x-user", value: "a" }] }],
        filters: [
          { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-a", value: "1" }] } },
          {
            type: "URLRewrite",
            urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" } },
          },
        ],
        backendRefs: [
          { name: "reviews-v1", port: 9080, weight: 90 },
          { name: "reviews-v2", port: 9080, weight: 10 },
        ],
        timeouts: { request: "10s", backendRequest: "2s" },
      },
      {
        filters: [{ type: "CORS", cors: { allowOrigins: ["https://*.example.com"], maxAge: 60 } }],
        backendRefs: [{ name: "reviews-v1", port: 9080 }],
        retry: { attempts: 3, codes: [503] },
      },
    ];
    expect(http(rules)).toEqual([]);
    expect(http(rules, `${GW}/v1beta1`)).toEqual([]);
  });

  it("reports a filter type without its config, and config of another type", () => {
    expect(
      http([
        {
          filters: [
            { type: "RequestHeaderModifier", responseHeaderModifier: { set: [{ name: "a", value: "b" }] } },
          ],
          backendRefs: [{ name: "x", port: 80 }],
        },
      ]),
    ).toEqual([
      "spec.rules[0].filters[0].requestHeaderModifier: is required for type RequestHeaderModifier",
      "spec.rules[0].filters[0].responseHeaderModifier: must not be set for type RequestHeaderModifier",
    ]);
  });

  it("reports negative weights, a missing Service port and a prefix rewrite without a prefix match", () => {
    const problems = http([
      {
        matches: [{ path: { type: "Exact", value: "/a" } }],
        filters: [
          {
            type: "URLRewrite",
            urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/" } },
          },
        ],
        backendRefs: [{ name: "x", weight: -1 }],
      },
    ]);
    expect(problems).toContain("spec.rules[0].backendRefs[0].port: is required for a Service backend");
    expect(problems.some((p) => p.startsWith("spec.rules[0].backendRefs[0].weight:"))).toBe(true);
    expect(problems).toContain(
      "spec.rules[0].filters[0].urlRewrite.path: ReplacePrefixMatch needs every match of the rule to be a PathPrefix path match",
    );
  });

  it("reports a redirect with backends, and a repeated header filter", () => {
    const problems = http([
      {
        filters: [
          { type: "RequestRedirect", requestRedirect: { statusCode: 301 } },
          { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["a"] } },
          { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["b"] } },
        ],
        backendRefs: [{ name: "x", port: 80 }],
      },
    ]);
    expect(problems).toContain(
      "spec.rules[0].backendRefs: must be empty when the rule redirects (RequestRedirect)",
    );
    expect(problems).toContain(
      "spec.rules[0].filters[2]: repeats filter type ResponseHeaderModifier (first at spec.rules[0].filters[1])",
    );
  });

  it("reports regular expressions that RE2 cannot compile, in paths, headers and query parameters", () => {
    const problems = http([
      {
        matches: [
          {
            path: { type: "RegularExpression", value: "/a(b" },
            headers: [{ type: "RegularExpression", name: "x", value: "(" }],
            queryParams: [{ type: "RegularExpression", name: "q", value: "[" }],
          },
        ],
        backendRefs: [{ name: "x", port: 80 }],
      },
    ]);
    expect(problems.map((p) => p.split(":")[0])).toEqual([
      "spec.rules[0].matches[0].headers[0].value",
      "spec.rules[0].matches[0].queryParams[0].value",
      "spec.rules[0].matches[0].path.value",
    ]);
  });

  it("reports schema errors (an unknown filter type) through the Gateway API models", () => {
    const problems = http([{ filters: [{ type: "Teleport" }], backendRefs: [{ name: "x", port: 80 }] }]);
    expect(problems.some((p) => p.startsWith("spec.rules[0].filters[0].type:"))).toBe(true);
  });
});

describe("GRPCRoute validation", () => {
  it("accepts method matches and refuses HTTP-only filters and empty method matches", () => {
    const ok = problemsOf("GRPCRoute", {
      parentRefs,
      rules: [
        {
          matches: [{ method: { service: "pkg.Svc", method: "Get" } }],
          backendRefs: [{ name: "x", port: 80 }],
        },
      ],
    });
    expect(ok).toEqual([]);
    const bad = problemsOf("GRPCRoute", {
      parentRefs,
      rules: [
        {
          matches: [{ method: {} }],
          filters: [{ type: "RequestMirror", requestMirror: { backendRef: { name: "m", port: 80 } } }],
          backendRefs: [{ name: "x", port: 80 }],
        },
      ],
    });
    expect(bad).toContain("spec.rules[0].matches[0].method: needs service or method (or both)");
  });
});
