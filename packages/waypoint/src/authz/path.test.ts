import { describe, expect, it } from "vitest";
import { compilePathTemplate, normalizePath, type PathNormalization, splitPathAndQuery } from "./path.js";

describe("normalizePath (Envoy normalize_path, Chromium canonicalization)", () => {
  const cases: Array<[string, string | undefined, PathNormalization?]> = [
    ["/a/../admin", "/admin"],
    ["/a/./b", "/a/b"],
    ["/a/b/..", "/a/"],
    ["/a/.", "/a/"],
    ["/..", "/"],
    ["/../../x", "/x"],
    ["/%2e%2e/admin", "/admin"],
    ["/x/%2E%2e/admin", "/admin"],
    ["/x/.%2e/admin", "/admin"],
    ["/a/..b/c", "/a/..b/c"],
    ["/a/b..", "/a/b.."],
    ["/%61dmin", "/admin"],
    ["/%7e%2D%5f", "/~-_"],
    ["/a%2Fb", "/a%2Fb"],
    ["/a%2fb", "/a%2fb"],
    ["/a\\..\\admin", "/admin"],
    ["/a\\b", "/a/b"],
    ["//admin", "//admin"],
    ["/a b", "/a%20b"],
    ['/a"<>`{}|^', "/a%22%3C%3E%60%7B%7D%7C%5E"],
    ["/caf\u00e9", "/caf%E9"],
    ["/x?q=/../y&a=%61", "/x?q=/../y&a=%61"],
    ["/a/../b#frag", "/b"],
    ["/%", "/%"],
    ["/%zz", "/%zz"],
    ["/%%30%30", "/%2500"],
    ["/%00", undefined],
    ["*", "*"],
    ["//admin", "/admin", "MERGE_SLASHES"],
    ["/a//b/../c?x=//y", "/a/c?x=//y", "MERGE_SLASHES"],
    ["/a%2Fb%5c..%2f/c", "/a/c", "DECODE_AND_MERGE_SLASHES"],
    ["/a/../b", "/a/../b", "NONE"],
  ];
  it.each(cases)("%s → %s (%s)", (input, want, mode = "BASE") => {
    expect(normalizePath(input, mode)).toBe(want);
  });

  it("is idempotent under BASE", () => {
    for (const [input] of cases) {
      const once = normalizePath(input);
      if (once !== undefined) expect(normalizePath(once)).toBe(once);
    }
  });

  it("splits the query and drops a fragment", () => {
    expect(splitPathAndQuery("/a?b=c#d")).toEqual({ path: "/a", query: "?b=c" });
    expect(splitPathAndQuery("/a#d?x")).toEqual({ path: "/a", query: "" });
  });
});

describe("path templates", () => {
  const cases: Array<[string, string, boolean]> = [
    ["/foo/{*}", "/foo/bar", true],
    ["/foo/{*}", "/foo/bar/baz", false],
    ["/foo/{*}", "/foo/", false],
    ["/foo/{*}", "/foo", false],
    ["/foo/{**}", "/foo/", true],
    ["/foo/{**}", "/foo/bar/baz", true],
    ["/foo/{**}", "/foo", false],
    ["/foo/{*}/bar/{**}", "/foo/x/bar/a/b", true],
    ["/foo/{*}/bar/{**}", "/foo/x/y/bar/a", false],
    ["/{*}/admin", "/v1/admin", true],
    ["/{*}/admin", "/v1/admin/", false],
    ["/api/{*}.txt", "/api/a.txt", true],
    ["/a.b/{*}", "/aXb/c", false],
  ];
  it.each(cases)("%s vs %s → %s", (template, path, want) => {
    expect(compilePathTemplate(template).test(path)).toBe(want);
  });

  it("rejects {**} before another operator, and stray braces", () => {
    expect(() => compilePathTemplate("/a/{**}/{*}")).toThrow(/last operator/);
    expect(() => compilePathTemplate("/a/{id}")).toThrow(/invalid path template/);
  });
});
