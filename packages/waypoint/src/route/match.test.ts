import { describe, expect, it } from "vitest";
import { compileMatch, matchRequest, parseQuery } from "./match.js";
import { ConfigProblems, type HttpMatchRequest } from "./spec.js";
import { type RequestOverrides, request } from "./testing.js";

function matches(spec: HttpMatchRequest, req: RequestOverrides): boolean {
  const problems = new ConfigProblems();
  const compiled = compileMatch(spec, { object: "default/t", path: "match[0]", problems });
  expect(problems.list).toEqual([]);
  return matchRequest(compiled, request(req));
}

describe("matchRequest", () => {
  const cases: [string, HttpMatchRequest, RequestOverrides, boolean][] = [
    ["uri exact", { uri: { exact: "/reviews" } }, { path: "/reviews" }, true],
    ["uri exact ignores the query string", { uri: { exact: "/reviews" } }, { path: "/reviews?x=1" }, true],
    ["uri exact is case-sensitive", { uri: { exact: "/reviews" } }, { path: "/Reviews" }, false],
    ["uri prefix", { uri: { prefix: "/api" } }, { path: "/api/v1" }, true],
    ["uri prefix mismatch", { uri: { prefix: "/api" } }, { path: "/ap" }, false],
    ["uri regex full match", { uri: { regex: "/api/v[0-9]+" } }, { path: "/api/v2" }, true],
    ["uri regex must match the whole path", { uri: { regex: "/api/v[0-9]+" } }, { path: "/api/v2/x" }, false],
    ["uri regex is not a search", { uri: { regex: "v[0-9]+" } }, { path: "/api/v2" }, false],
    ["uri regex ignores the query", { uri: { regex: "/api/v[0-9]+" } }, { path: "/api/v2?q=1" }, true],
    ["ignoreUriCase exact", { uri: { exact: "/Reviews" }, ignoreUriCase: true }, { path: "/REVIEWS" }, true],
    ["ignoreUriCase prefix", { uri: { prefix: "/API" }, ignoreUriCase: true }, { path: "/api/x" }, true],
    [
      "ignoreUriCase leaves regex alone",
      { uri: { regex: "/api" }, ignoreUriCase: true },
      { path: "/API" },
      false,
    ],
    [
      "header exact",
      { headers: { "end-user": { exact: "jason" } } },
      { headers: { "end-user": "jason" } },
      true,
    ],
    [
      "header exact other value",
      { headers: { "end-user": { exact: "jason" } } },
      { headers: { "end-user": "bob" } },
      false,
    ],
    ["header absent", { headers: { "end-user": { exact: "jason" } } }, { headers: {} }, false],
    [
      "header name case-insensitive",
      { headers: { "End-User": { exact: "jason" } } },
      { headers: { "end-user": "jason" } },
      true,
    ],
    ["header prefix", { headers: { ua: { prefix: "Mozilla" } } }, { headers: { ua: "Mozilla/5.0" } }, true],
    ["header regex full match", { headers: { v: { regex: "v[12]" } } }, { headers: { v: "v12" } }, false],
    ["header {} means present", { headers: { "x-debug": {} } }, { headers: { "x-debug": "" } }, true],
    ["header {} absent", { headers: { "x-debug": {} } }, { headers: {} }, false],
    [
      "header regex * means present",
      { headers: { "x-debug": { regex: "*" } } },
      { headers: { "x-debug": "1" } },
      true,
    ],
    [
      "withoutHeaders: absent header",
      { withoutHeaders: { "x-canary": { exact: "1" } } },
      { headers: {} },
      true,
    ],
    [
      "withoutHeaders: other value",
      { withoutHeaders: { "x-canary": { exact: "1" } } },
      { headers: { "x-canary": "2" } },
      true,
    ],
    [
      "withoutHeaders: matching value",
      { withoutHeaders: { "x-canary": { exact: "1" } } },
      { headers: { "x-canary": "1" } },
      false,
    ],
    [
      "withoutHeaders {}: present",
      { withoutHeaders: { "x-canary": {} } },
      { headers: { "x-canary": "1" } },
      false,
    ],
    ["withoutHeaders {}: absent", { withoutHeaders: { "x-canary": {} } }, { headers: {} }, true],
    // Envoy's treat_missing_header_as_empty: an absent header is "" for value matchers.
    [
      "withoutHeaders regex matching empty",
      { withoutHeaders: { "x-a": { regex: ".*" } } },
      { headers: {} },
      false,
    ],
    ["query exact", { queryParams: { debug: { exact: "true" } } }, { path: "/p?debug=true" }, true],
    [
      "query exact mismatch",
      { queryParams: { debug: { exact: "true" } } },
      { path: "/p?debug=false" },
      false,
    ],
    ["query absent", { queryParams: { debug: { exact: "true" } } }, { path: "/p" }, false],
    ["query decoded value", { queryParams: { q: { exact: "a b/c" } } }, { path: "/p?q=a%20b%2Fc" }, true],
    ["query regex full match", { queryParams: { id: { regex: "\\d+" } } }, { path: "/p?id=123a" }, false],
    ["query prefix", { queryParams: { id: { prefix: "12" } } }, { path: "/p?id=123" }, true],
    ["query {} present", { queryParams: { flag: {} } }, { path: "/p?flag" }, true],
    ["query flag is the empty string", { queryParams: { flag: { exact: "" } } }, { path: "/p?flag" }, true],
    ["query first value wins", { queryParams: { a: { exact: "1" } } }, { path: "/p?a=1&a=2" }, true],
    [
      "authority exact includes the port",
      { authority: { exact: "reviews:9080" } },
      { authority: "reviews:9080" },
      true,
    ],
    ["authority without the port", { authority: { exact: "reviews" } }, { authority: "reviews:9080" }, false],
    ["authority prefix", { authority: { prefix: "reviews" } }, { authority: "reviews:9080" }, true],
    ["method exact", { method: { exact: "POST" } }, { method: "POST" }, true],
    ["method is case-sensitive", { method: { exact: "post" } }, { method: "POST" }, false],
    ["method regex", { method: { regex: "GET|HEAD" } }, { method: "HEAD" }, true],
    ["scheme exact", { scheme: { exact: "http" } }, { scheme: "http" }, true],
    ["scheme mismatch", { scheme: { exact: "https" } }, { scheme: "http" }, false],
    [
      "sourceNamespace from the model",
      { sourceNamespace: "frontend" },
      { source: { namespace: "frontend" } },
      true,
    ],
    [
      "sourceNamespace mismatch",
      { sourceNamespace: "frontend" },
      { source: { namespace: "default" } },
      false,
    ],
    [
      "sourceNamespace from the SPIFFE ID",
      { sourceNamespace: "frontend" },
      { source: { namespace: undefined, principal: "spiffe://cluster.local/ns/frontend/sa/web" } },
      true,
    ],
    [
      "JWT claim headers never match",
      { headers: { "@request.auth.claims.group": { exact: "a" } } },
      {},
      false,
    ],
    [
      "all fields are ANDed",
      { uri: { prefix: "/ratings" }, headers: { "end-user": { exact: "jason" } } },
      { path: "/ratings/v2", headers: { "end-user": "bob" } },
      false,
    ],
    ["an empty match matches everything", {}, { path: "/anything" }, true],
  ];

  it.each(cases)("%s", (_name, spec, req, expected) => {
    expect(matches(spec, req)).toBe(expected);
  });

  it("reports RE2-invalid regexes with their path instead of throwing", () => {
    const problems = new ConfigProblems();
    compileMatch(
      { uri: { regex: "(a" }, headers: { x: { regex: "(?<=a)b" } } },
      { object: "ns/vs", path: "m", problems },
    );
    expect(problems.list.map((p) => p.path).sort()).toEqual(["m.headers.x.regex", "m.uri.regex"]);
  });
});

describe("parseQuery", () => {
  it("keeps the first value, decodes, and ignores the fragment", () => {
    const q = parseQuery("/p?a=1&b=x%26y&a=2&flag&bad=%zz#frag");
    expect([...q]).toEqual([
      ["a", "1"],
      ["b", "x&y"],
      ["flag", ""],
      ["bad", "%zz"],
    ]);
  });
});
