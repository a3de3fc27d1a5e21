import { describe, expect, it } from "vitest";
import type { L7Request } from "../model/request.js";
import { type AuthorizerOptions, compileAuthorization, RBAC_ACCESS_DENIED } from "./authorizer.js";
import type { AuthorizationAction, AuthorizationPolicyObject, AuthzRule } from "./policy.js";
import type { RequestAuth } from "./request-facts.js";

// ---- builders ----

interface RequestOverrides extends Partial<Omit<L7Request, "source" | "destination">> {
  source?: Partial<L7Request["source"]>;
  destination?: Partial<L7Request["destination"]>;
}

function request(over: RequestOverrides = {}): L7Request {
  const { source, destination, ...rest } = over;
  return {
    method: "GET",
    scheme: "http",
    authority: "httpbin.foo.svc.cluster.local",
    path: "/",
    headers: {},
    port: 8000,
    protocol: "http/1.1",
    ...rest,
    source: {
      ip: "10.0.0.1",
      principal: "spiffe://cluster.local/ns/foo/sa/sleep",
      namespace: "foo",
      ...source,
    },
    destination: {
      host: "httpbin.foo.svc.cluster.local",
      namespace: "foo",
      ip: "10.96.0.10",
      port: 8000,
      ...destination,
    },
  };
}

function policy(
  action: AuthorizationAction,
  rules: Array<AuthzRule | null> | undefined,
  name = `p-${action.toLowerCase()}`,
  namespace = "foo",
  annotations?: Record<string, string>,
): AuthorizationPolicyObject {
  return {
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec: rules === undefined ? { action } : { action, rules },
  };
}

const JWT: RequestAuth = {
  requestPrincipal: "https://idp.example.com/alice",
  claims: {
    iss: "https://idp.example.com",
    sub: "alice",
    aud: ["svc-b", "svc-a"],
    azp: "client-1",
    groups: ["dev", "admins"],
    scope: ["read", "write"],
    nested: { role: "admin", level: 3 },
  },
};

/** Does an ALLOW policy holding only `rule` allow the request? */
function allows(rule: AuthzRule, over: RequestOverrides = {}, auth?: RequestAuth, opts?: AuthorizerOptions) {
  return compileAuthorization([policy("ALLOW", [rule])], opts).authorize(request(over), auth).allowed;
}

const src = (source: NonNullable<NonNullable<AuthzRule["from"]>[number]["source"]>): AuthzRule => ({
  from: [{ source }],
});
const op = (operation: NonNullable<NonNullable<AuthzRule["to"]>[number]["operation"]>): AuthzRule => ({
  to: [{ operation }],
});
const when = (key: string, values?: string[], notValues?: string[]): AuthzRule => ({
  when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }],
});

const noPeer: RequestOverrides = { source: { principal: undefined } };
const xff: RequestOverrides = { headers: { "x-forwarded-for": "203.0.113.7, 198.51.100.2" } };

// ---- every field, positive and negative ----

describe("fields (an ALLOW policy with one rule)", () => {
  const cases: Array<[string, AuthzRule, RequestOverrides, RequestAuth | undefined, boolean]> = [
    // source principals compare with the peer's SPIFFE ID without spiffe://
    ["principals exact", src({ principals: ["cluster.local/ns/foo/sa/sleep"] }), {}, undefined, true],
    ["principals other", src({ principals: ["cluster.local/ns/foo/sa/other"] }), {}, undefined, false],
    ["principals prefix", src({ principals: ["cluster.local/ns/foo/*"] }), {}, undefined, true],
    ["principals suffix", src({ principals: ["*/sa/sleep"] }), {}, undefined, true],
    ["principals * needs a peer", src({ principals: ["*"] }), noPeer, undefined, false],
    ["notPrincipals hit", src({ notPrincipals: ["cluster.local/ns/foo/sa/sleep"] }), {}, undefined, false],
    ["notPrincipals * without peer", src({ notPrincipals: ["*"] }), noPeer, undefined, true],
    // request principals: <iss>/<sub>, matched as the iss and sub claims
    ["requestPrincipals exact", src({ requestPrincipals: ["https://idp.example.com/alice"] }), {}, JWT, true],
    ["requestPrincipals other", src({ requestPrincipals: ["https://idp.example.com/bob"] }), {}, JWT, false],
    ["requestPrincipals iss/*", src({ requestPrincipals: ["https://idp.example.com/*"] }), {}, JWT, true],
    ["requestPrincipals */sub", src({ requestPrincipals: ["*/alice"] }), {}, JWT, true],
    ["requestPrincipals *suffix/sub", src({ requestPrincipals: ["*.example.com/alice"] }), {}, JWT, true],
    ["requestPrincipals * without JWT", src({ requestPrincipals: ["*"] }), {}, undefined, false],
    ["notRequestPrincipals * without JWT", src({ notRequestPrincipals: ["*"] }), {}, undefined, true],
    ["notRequestPrincipals * with JWT", src({ notRequestPrincipals: ["*"] }), {}, JWT, false],
    [
      "requestPrincipals from principal only",
      src({ requestPrincipals: ["https://idp.example.com/alice"] }),
      {},
      { requestPrincipal: "https://idp.example.com/alice" },
      true,
    ],
    // namespaces come from the peer identity, not from any other field
    ["namespaces", src({ namespaces: ["foo"] }), {}, undefined, true],
    ["namespaces other", src({ namespaces: ["bar"] }), {}, undefined, false],
    ["namespaces prefix", src({ namespaces: ["f*"] }), {}, undefined, true],
    ["namespaces without peer", src({ namespaces: ["foo"] }), noPeer, undefined, false],
    ["notNamespaces", src({ notNamespaces: ["foo"] }), {}, undefined, false],
    // service accounts: ns/name, or name in the policy's namespace
    ["serviceAccounts ns/name", src({ serviceAccounts: ["foo/sleep"] }), {}, undefined, true],
    ["serviceAccounts name", src({ serviceAccounts: ["sleep"] }), {}, undefined, true],
    ["serviceAccounts other ns", src({ serviceAccounts: ["bar/sleep"] }), {}, undefined, false],
    ["serviceAccounts no prefix match", src({ serviceAccounts: ["foo/slee"] }), {}, undefined, false],
    ["notServiceAccounts", src({ notServiceAccounts: ["foo/sleep"] }), {}, undefined, false],
    // source IP
    ["ipBlocks cidr", src({ ipBlocks: ["10.0.0.0/24"] }), {}, undefined, true],
    ["ipBlocks single", src({ ipBlocks: ["10.0.0.1"] }), {}, undefined, true],
    ["ipBlocks other", src({ ipBlocks: ["10.0.1.0/24"] }), {}, undefined, false],
    [
      "ipBlocks mapped peer",
      src({ ipBlocks: ["10.0.0.0/24"] }),
      { source: { ip: "::ffff:10.0.0.1" } },
      undefined,
      true,
    ],
    ["ipBlocks v6", src({ ipBlocks: ["fd00::/8"] }), { source: { ip: "fd00::1" } }, undefined, true],
    ["notIpBlocks", src({ notIpBlocks: ["10.0.0.0/8"] }), {}, undefined, false],
    // remote IP: rightmost X-Forwarded-For entry (no trusted proxies), else the peer address
    ["remoteIpBlocks without XFF", src({ remoteIpBlocks: ["10.0.0.1"] }), {}, undefined, true],
    ["remoteIpBlocks XFF rightmost", src({ remoteIpBlocks: ["198.51.100.2"] }), xff, undefined, true],
    ["remoteIpBlocks XFF leftmost", src({ remoteIpBlocks: ["203.0.113.7"] }), xff, undefined, false],
    ["notRemoteIpBlocks", src({ notRemoteIpBlocks: ["198.51.100.0/24"] }), xff, undefined, false],
    // hosts: case-insensitive, against the whole :authority (port included), as istiod
    ["hosts exact", op({ hosts: ["httpbin.foo.svc.cluster.local"] }), {}, undefined, true],
    ["hosts case", op({ hosts: ["HTTPBIN.foo.svc.cluster.local"] }), {}, undefined, true],
    [
      "hosts exact vs host:port",
      op({ hosts: ["httpbin.foo.svc.cluster.local"] }),
      { authority: "httpbin.foo.svc.cluster.local:8000" },
      undefined,
      false,
    ],
    ["hosts prefix", op({ hosts: ["httpbin.foo*"] }), { authority: "httpbin.foo:8000" }, undefined, true],
    ["hosts suffix", op({ hosts: ["*.cluster.local"] }), {}, undefined, true],
    ["notHosts", op({ notHosts: ["httpbin.*"] }), {}, undefined, false],
    // ports: the destination (service) port
    ["ports", op({ ports: ["8000"] }), {}, undefined, true],
    ["ports other", op({ ports: ["9000"] }), {}, undefined, false],
    ["notPorts", op({ notPorts: ["8000"] }), {}, undefined, false],
    // methods: case-sensitive
    ["methods", op({ methods: ["GET", "HEAD"] }), {}, undefined, true],
    ["methods case", op({ methods: ["get"] }), {}, undefined, false],
    ["methods prefix", op({ methods: ["G*"] }), {}, undefined, true],
    ["notMethods", op({ notMethods: ["GET"] }), {}, undefined, false],
    // paths: normalized, without the query
    ["paths exact ignores query", op({ paths: ["/api"] }), { path: "/api?x=1" }, undefined, true],
    ["paths prefix", op({ paths: ["/api/*"] }), { path: "/api/users" }, undefined, true],
    ["paths suffix", op({ paths: ["*/info"] }), { path: "/api/info" }, undefined, true],
    ["paths case", op({ paths: ["/API"] }), { path: "/api" }, undefined, false],
    ["paths {*}", op({ paths: ["/api/{*}"] }), { path: "/api/users" }, undefined, true],
    ["paths {*} one segment", op({ paths: ["/api/{*}"] }), { path: "/api/users/1" }, undefined, false],
    ["paths {**}", op({ paths: ["/api/{**}"] }), { path: "/api/users/1" }, undefined, true],
    ["paths {*} middle", op({ paths: ["/api/{*}/info"] }), { path: "/api/u1/info" }, undefined, true],
    ["paths normalized", op({ paths: ["/admin"] }), { path: "/public/../admin" }, undefined, true],
    ["notPaths", op({ notPaths: ["/admin*"] }), { path: "/admin/x" }, undefined, false],
  ];
  it.each(cases)("%s", (_name, rule, over, auth, want) => {
    expect(allows(rule, over, auth)).toBe(want);
  });

  it("numTrustedProxies moves remote.ip one hop further left", () => {
    expect(allows(src({ remoteIpBlocks: ["203.0.113.7"] }), xff, undefined, { numTrustedProxies: 1 })).toBe(
      true,
    );
    // Fewer entries than trusted hops: Envoy falls back to the peer address.
    expect(allows(src({ remoteIpBlocks: ["10.0.0.1"] }), xff, undefined, { numTrustedProxies: 5 })).toBe(
      true,
    );
  });
});

describe("when conditions", () => {
  const header = { headers: { "x-user": "alice", "x-empty": "", "x-list": "a,b, c" } };
  const cases: Array<[string, AuthzRule, RequestOverrides, RequestAuth | undefined, boolean]> = [
    ["header exact", when("request.headers[X-User]", ["alice"]), header, undefined, true],
    ["header prefix", when("request.headers[x-user]", ["al*"]), header, undefined, true],
    ["header other", when("request.headers[x-user]", ["bob"]), header, undefined, false],
    ["header * on empty value", when("request.headers[x-empty]", ["*"]), header, undefined, true],
    ["header missing", when("request.headers[x-missing]", ["*"]), header, undefined, false],
    [
      "header notValues, missing",
      when("request.headers[x-missing]", undefined, ["bob"]),
      header,
      undefined,
      true,
    ],
    [
      "header values and notValues",
      when("request.headers[x-user]", ["*"], ["alice"]),
      header,
      undefined,
      false,
    ],
    ["pseudo :method", when("request.headers[:method]", ["GET"]), {}, undefined, true],
    [
      "inline list element",
      when("request.experimental.inline.headers[x-list]", ["b"]),
      header,
      undefined,
      true,
    ],
    ["source.ip", when("source.ip", ["10.0.0.0/24"]), {}, undefined, true],
    ["source.ip notValues", when("source.ip", undefined, ["10.0.0.1"]), {}, undefined, false],
    ["remote.ip", when("remote.ip", ["198.51.100.2"]), xff, undefined, true],
    ["source.namespace", when("source.namespace", ["foo"]), {}, undefined, true],
    ["source.principal", when("source.principal", ["cluster.local/ns/foo/sa/sleep"]), {}, undefined, true],
    ["source.serviceAccount", when("source.serviceAccount", ["foo/sleep"]), {}, undefined, true],
    [
      "request.auth.principal",
      when("request.auth.principal", ["https://idp.example.com/alice"]),
      {},
      JWT,
      true,
    ],
    ["request.auth.principal none", when("request.auth.principal", ["*"]), {}, undefined, false],
    ["request.auth.audiences list", when("request.auth.audiences", ["svc-a"]), {}, JWT, true],
    ["request.auth.audiences other", when("request.auth.audiences", ["svc-z"]), {}, JWT, false],
    ["request.auth.presenter", when("request.auth.presenter", ["client-*"]), {}, JWT, true],
    ["claims list element", when("request.auth.claims[groups]", ["admins"]), {}, JWT, true],
    ["claims list prefix", when("request.auth.claims[groups]", ["adm*"]), {}, JWT, true],
    ["claims list notValues", when("request.auth.claims[groups]", undefined, ["admins"]), {}, JWT, false],
    ["claims string other", when("request.auth.claims[iss]", ["*.example.org"]), {}, JWT, false],
    ["claims string suffix", when("request.auth.claims[iss]", ["*example.com"]), {}, JWT, true],
    ["claims nested", when("request.auth.claims[nested][role]", ["admin"]), {}, JWT, true],
    ["claims non-string", when("request.auth.claims[nested][level]", ["3"]), {}, JWT, false],
    ["claims without JWT", when("request.auth.claims[groups]", ["admins"]), {}, undefined, false],
    ["destination.ip", when("destination.ip", ["10.96.0.0/16"]), {}, undefined, true],
    ["destination.port", when("destination.port", ["8000"]), {}, undefined, true],
    ["destination.port other", when("destination.port", ["80"]), {}, undefined, false],
    ["connection.sni (no TLS inside HBONE)", when("connection.sni", ["*"]), {}, undefined, false],
    ["connection.sni notValues", when("connection.sni", undefined, ["x.example.com"]), {}, undefined, true],
    ["envoy filter metadata", when("experimental.envoy.filters.a.b[c]", ["x"]), {}, undefined, false],
    [
      "envoy filter metadata notValues",
      when("experimental.envoy.filters.a.b[c]", undefined, ["x"]),
      {},
      undefined,
      true,
    ],
  ];
  it.each(cases)("%s", (_name, rule, over, auth, want) => {
    expect(allows(rule, over, auth)).toBe(want);
  });
});

describe("rule structure", () => {
  it("needs one from, one to and every when", () => {
    const rule: AuthzRule = {
      from: [{ source: { namespaces: ["bar"] } }, { source: { namespaces: ["foo"] } }],
      to: [{ operation: { methods: ["POST"] } }, { operation: { paths: ["/ok"] } }],
      when: [
        { key: "request.headers[x-a]", values: ["1"] },
        { key: "request.headers[x-b]", values: ["2"] },
      ],
    };
    expect(allows(rule, { path: "/ok", headers: { "x-a": "1", "x-b": "2" } })).toBe(true);
    expect(allows(rule, { path: "/ok", headers: { "x-a": "1" } })).toBe(false);
    expect(allows(rule, { path: "/no", headers: { "x-a": "1", "x-b": "2" } })).toBe(false);
    expect(allows(rule, { path: "/ok", headers: { "x-a": "1", "x-b": "2" }, ...noPeer })).toBe(false);
  });

  it("ANDs fields inside one source", () => {
    const rule = src({ namespaces: ["foo"], ipBlocks: ["192.168.0.0/16"] });
    expect(allows(rule)).toBe(false);
  });

  it("rules: [{}] matches everything; spec: {} denies everything", () => {
    expect(allows({}, { method: "DELETE", ...noPeer })).toBe(true);
    const denyAll = compileAuthorization([policy("ALLOW", undefined)]).authorize(request());
    expect(denyAll).toMatchObject({ allowed: false, status: 403 });
    // The same empty spec as DENY or AUDIT never matches.
    expect(compileAuthorization([policy("DENY", [])]).authorize(request()).allowed).toBe(true);
  });
});

describe("actions", () => {
  it("allows when nothing applies", () => {
    expect(compileAuthorization([]).authorize(request())).toMatchObject({ allowed: true, audits: [] });
  });

  it("DENY beats ALLOW and names the rule", () => {
    const authz = compileAuthorization([
      policy("ALLOW", [{}]),
      policy("DENY", [op({ paths: ["/nope"] }), op({ paths: ["/admin*"] })], "no-admin"),
    ]);
    expect(authz.authorize(request({ path: "/x" })).allowed).toBe(true);
    expect(authz.authorize(request({ path: "/admin/users" }))).toMatchObject({
      allowed: false,
      status: 403,
      policy: "ns[foo]-policy[no-admin]-rule[1]",
    });
    expect(RBAC_ACCESS_DENIED).toBe("RBAC: access denied");
  });

  it("denies when ALLOW policies exist and none matches; any ALLOW policy may allow", () => {
    const authz = compileAuthorization([
      policy("ALLOW", [op({ methods: ["GET"] })], "gets"),
      policy("ALLOW", [op({ methods: ["POST"] })], "posts"),
    ]);
    expect(authz.authorize(request({ method: "POST" }))).toMatchObject({
      allowed: true,
      policy: "ns[foo]-policy[posts]-rule[0]",
    });
    expect(authz.authorize(request({ method: "PUT" }))).toMatchObject({ allowed: false, status: 403 });
  });

  it("AUDIT is only recorded", () => {
    const authz = compileAuthorization([policy("AUDIT", [op({ paths: ["/audit*"] })], "audit")]);
    expect(authz.authorize(request({ path: "/audited" }))).toMatchObject({
      allowed: true,
      audits: ["ns[foo]-policy[audit]-rule[0]"],
    });
    expect(authz.authorize(request({ path: "/other" })).audits).toEqual([]);
    const denied = compileAuthorization([
      policy("AUDIT", [{}], "audit"),
      policy("ALLOW", [op({ paths: ["/x"] })]),
    ]).authorize(request({ path: "/y" }));
    expect(denied).toMatchObject({ allowed: false, audits: ["ns[foo]-policy[audit]-rule[0]"] });
  });

  it("CUSTOM fails closed, whatever its rules and the ALLOW policies say", () => {
    const custom: AuthorizationPolicyObject = {
      metadata: { name: "ext", namespace: "foo" },
      spec: { action: "CUSTOM", provider: { name: "opa" }, rules: [op({ paths: ["/never"] })] },
    };
    const decision = compileAuthorization([policy("ALLOW", [{}]), custom]).authorize(request());
    expect(decision).toMatchObject({ allowed: false, status: 403, policy: "ns[foo]-policy[ext]" });
    expect(decision.reason).toMatch(/CUSTOM \(ext_authz\) policies are not supported by this waypoint/);
  });

  it("dry-run policies are evaluated, not enforced", () => {
    const authz = compileAuthorization([
      policy("DENY", [{}], "try-deny", "foo", { "istio.io/dry-run": "true" }),
      policy("ALLOW", [op({ paths: ["/x"] })], "try-allow", "foo", { "istio.io/dry-run": "true" }),
    ]);
    expect(authz.authorize(request({ path: "/y" }))).toMatchObject({
      allowed: true,
      dryRun: ["ns[foo]-policy[try-deny]-rule[0]"],
    });
  });

  it("answers 400 for a path Envoy would reject", () => {
    expect(compileAuthorization([]).authorize(request({ path: "/a%00" }))).toMatchObject({
      allowed: false,
      status: 400,
    });
  });
});

describe("path normalization against policies", () => {
  const authz = (opts?: AuthorizerOptions) =>
    compileAuthorization([policy("DENY", [op({ paths: ["/admin"] })])], opts);
  it.each([
    ["/admin", false],
    ["/a/../admin", false],
    ["/x/%2e%2e/admin", false],
    ["/%61dmin", false],
    ["/admin?debug=1", false],
    ["/ADMIN", true],
    ["//admin", true], // BASE keeps double slashes
    ["/admin%2F", true],
  ])("DENY /admin vs %s → allowed=%s", (path, allowed) => {
    expect(authz().authorize(request({ path })).allowed).toBe(allowed);
  });

  it("MERGE_SLASHES folds //admin", () => {
    expect(
      authz({ pathNormalization: "MERGE_SLASHES" }).authorize(request({ path: "//admin" })).allowed,
    ).toBe(false);
  });
});

describe("values istiod cannot translate", () => {
  it("make an ALLOW rule match nothing", () => {
    const authz = compileAuthorization([policy("ALLOW", [src({ ipBlocks: ["not-an-ip", "10.0.0.1"] })])]);
    expect(authz.authorize(request()).allowed).toBe(false);
    expect(authz.warnings.join("\n")).toMatch(/ns\[foo\]-policy\[p-allow\]-rule\[0\]: skipped: invalid IP/);
  });

  it("only widen a DENY rule (the value is dropped, fail closed)", () => {
    const authz = compileAuthorization([
      policy("DENY", [
        { from: [{ source: { ipBlocks: ["bogus"] } }], to: [{ operation: { paths: ["/admin"] } }] },
      ]),
    ]);
    expect(authz.authorize(request({ path: "/admin" })).allowed).toBe(false);
    expect(authz.authorize(request({ path: "/other" })).allowed).toBe(true);
    expect(authz.warnings.join("\n")).toMatch(/ipBlocks: ignored invalid IP/);
  });

  it("an unknown attribute skips the rule for every action", () => {
    const authz = compileAuthorization([policy("DENY", [when("destination.labels[app]", ["x"])])]);
    expect(authz.authorize(request()).allowed).toBe(true);
    expect(authz.warnings.join("\n")).toMatch(/unknown attribute/);
  });
});

describe("opaque TCP (HTTP-only fields as istiod's TCP filter treats them)", () => {
  const tcp = request({ method: "", path: "", scheme: "tcp", authority: "" });
  const forTcp = { forTcp: true };

  it("a DENY rule drops its HTTP parts, so it denies every connection its other fields match", () => {
    const deny = [policy("DENY", [{ to: [{ operation: { paths: ["/admin*"], ports: ["8000"] } }] }])];
    expect(compileAuthorization(deny).authorize(tcp).allowed).toBe(true);
    expect(compileAuthorization(deny, forTcp).authorize(tcp).allowed).toBe(false);
    expect(
      compileAuthorization(deny, forTcp).authorize(
        request({ ...tcp, port: 9000, destination: { port: 9000 } }),
      ).allowed,
    ).toBe(true);
    const byHeader = [policy("DENY", [when("request.headers[x-evil]", ["1"])])];
    expect(compileAuthorization(byHeader, forTcp).authorize(tcp).allowed).toBe(false);
  });

  it("an ALLOW rule using an HTTP field matches nothing; one on L4 fields still allows", () => {
    for (const rule of [
      op({ notPaths: ["/admin"] }),
      op({ methods: ["GET"] }),
      src({ requestPrincipals: ["*"] }),
      when("request.auth.claims[iss]", ["x"]),
    ]) {
      expect(allows(rule, tcp, undefined, forTcp), JSON.stringify(rule)).toBe(false);
    }
    // Read as HTTP, an empty path is "not /admin": the rule would let every TCP connection in.
    expect(allows(op({ notPaths: ["/admin"] }), tcp)).toBe(true);
    expect(allows(src({ principals: ["cluster.local/ns/foo/sa/sleep"] }), tcp, undefined, forTcp)).toBe(true);
    expect(allows(op({ ports: ["8000"] }), tcp, undefined, forTcp)).toBe(true);
  });
});
