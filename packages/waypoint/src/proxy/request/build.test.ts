import { describe, expect, it } from "vitest";
import { compileAuthorization } from "../../authz/authorizer.js";
import { info } from "../testing.js";
import { buildRequest, type WireRequest } from "./build.js";

const wire = (url: string, extra: Partial<WireRequest> = {}): WireRequest => ({
  method: "GET",
  url,
  headers: { host: "shop.example.com" },
  httpVersionMajor: 1,
  ...extra,
});

describe("buildRequest: the request target", () => {
  it.each<[string, string, string]>([
    ["/admin?x=1", "/admin?x=1", "shop.example.com"],
    // Absolute-form: the path rules and routes see, and the upstream gets, the origin-form path;
    // the target's authority names the host (RFC 9112 3.2.2), as Envoy reads it.
    ["http://shop.example.com/admin?x=1", "/admin?x=1", "shop.example.com"],
    ["HTTPS://Other.Example.com:8443/a/../admin", "/a/../admin", "other.example.com:8443"],
    ["http://user:pw@other.example.com/admin", "/admin", "other.example.com"],
    ["http://other.example.com", "/", "other.example.com"],
    ["http://other.example.com?q=1", "/?q=1", "other.example.com"],
    ["http:///admin", "/admin", "shop.example.com"], // no authority in the target: Host stands
    ["*", "*", "shop.example.com"],
    ["//evil.example/x", "//evil.example/x", "shop.example.com"], // origin-form, not a scheme
  ])("%s → path %s, authority %s", (url, path, authority) => {
    const { l7 } = buildRequest(wire(url), info);
    expect(l7.path).toBe(path);
    expect(l7.authority).toBe(authority);
  });

  it("a CONNECT's authority-form target is left alone", () => {
    const built = buildRequest(wire("http://x.example.com:443", { method: "CONNECT" }), info);
    expect(built.connect).toBe(true);
    expect(built.l7.path).toBe("http://x.example.com:443");
  });
});

describe("an absolute-form target and a DENY on its path", () => {
  const deny = compileAuthorization([
    {
      metadata: { name: "no-admin", namespace: "test" },
      spec: { action: "DENY", rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] },
    },
  ]);
  it.each(["/admin", "http://shop.example.com/admin", "HTTP://shop.example.com:80/admin/x"])(
    "%s is denied",
    (url) => {
      expect(deny.authorize(buildRequest(wire(url), info).l7).allowed).toBe(false);
    },
  );
});
