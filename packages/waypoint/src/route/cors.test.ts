import { describe, expect, it } from "vitest";
import { type CorsPolicy, compileCorsPolicy, corsPreflight, corsResponseHeaders } from "./cors.js";
import { ConfigProblems, type CorsPolicySpec } from "./spec.js";
import { request } from "./testing.js";

function policy(spec: CorsPolicySpec): CorsPolicy {
  const problems = new ConfigProblems();
  const p = compileCorsPolicy(spec, { object: "ns/vs", path: "corsPolicy", problems });
  expect(problems.list).toEqual([]);
  return p;
}

// The example from Istio's CorsPolicy reference.
const example = policy({
  allowOrigins: [{ exact: "https://example.com" }, { regex: "https://.*\\.example\\.org" }],
  allowMethods: ["POST", "GET"],
  allowCredentials: false,
  allowHeaders: ["X-Foo-Bar"],
  exposeHeaders: ["X-Exposed"],
  maxAge: "24h",
});

const preflight = (origin: string, extra: Record<string, string> = {}) =>
  request({ method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", ...extra } });

describe("corsPreflight", () => {
  it("answers an allowed origin at the waypoint", () => {
    expect(corsPreflight(example, preflight("https://example.com"))).toEqual({
      status: 200,
      headers: {
        "access-control-allow-origin": "https://example.com",
        "access-control-allow-methods": "POST,GET",
        "access-control-allow-headers": "X-Foo-Bar",
        "access-control-max-age": "86400",
      },
    });
  });

  it("matches origins with RE2 regexes (whole value)", () => {
    expect(
      corsPreflight(example, preflight("https://api.example.org"))?.headers["access-control-allow-origin"],
    ).toBe("https://api.example.org");
    expect(corsPreflight(example, preflight("https://api.example.org.evil.com"))).toBeUndefined();
  });

  it("forwards a disallowed origin's preflight upstream by default", () => {
    expect(corsPreflight(example, preflight("https://evil.com"))).toBeUndefined();
  });

  it("answers a disallowed preflight without an allow-origin when unmatchedPreflights is IGNORE", () => {
    const ignore = policy({
      allowOrigins: [{ exact: "https://example.com" }],
      allowCredentials: true,
      unmatchedPreflights: "IGNORE",
    });
    expect(corsPreflight(ignore, preflight("https://evil.com"))).toEqual({
      status: 200,
      headers: { "access-control-allow-credentials": "true" },
    });
  });

  it.each([
    [
      "not OPTIONS",
      request({
        method: "POST",
        headers: { origin: "https://example.com", "access-control-request-method": "POST" },
      }),
    ],
    ["no Origin", request({ method: "OPTIONS", headers: { "access-control-request-method": "POST" } })],
    [
      "no Access-Control-Request-Method",
      request({ method: "OPTIONS", headers: { origin: "https://example.com" } }),
    ],
  ])("is not a preflight: %s", (_name, req) => {
    expect(corsPreflight(example, req)).toBeUndefined();
  });

  it('echoes the requested method and headers for "*"', () => {
    const star = policy({ allowOrigins: [{ prefix: "" }], allowMethods: ["*"], allowHeaders: ["*"] });
    const res = corsPreflight(
      star,
      preflight("https://any.site", { "access-control-request-headers": "x-a,x-b" }),
    );
    expect(res?.headers).toEqual({
      "access-control-allow-origin": "https://any.site",
      "access-control-allow-methods": "POST",
      "access-control-allow-headers": "x-a,x-b",
    });
  });

  it("honours the deprecated allowOrigin list", () => {
    const legacy = policy({ allowOrigin: ["https://old.example"] });
    expect(corsPreflight(legacy, preflight("https://old.example"))?.status).toBe(200);
  });
});

describe("corsResponseHeaders", () => {
  it.each<[string, Record<string, string>, Record<string, string>]>([
    [
      "allowed origin",
      { origin: "https://example.com" },
      { "access-control-allow-origin": "https://example.com", "access-control-expose-headers": "X-Exposed" },
    ],
    ["disallowed origin gets nothing", { origin: "https://evil.com" }, {}],
    ["no Origin gets nothing", {}, {}],
  ])("%s", (_name, headers, expected) => {
    expect(corsResponseHeaders(example, request({ method: "GET", headers }))).toEqual(expected);
  });

  it("adds allow-credentials when configured", () => {
    const creds = policy({ allowOrigins: [{ exact: "https://a.test" }], allowCredentials: true });
    expect(corsResponseHeaders(creds, request({ headers: { origin: "https://a.test" } }))).toEqual({
      "access-control-allow-origin": "https://a.test",
      "access-control-allow-credentials": "true",
    });
  });
});
