import {
  type AddressMatch,
  type Authorization,
  type AuthorizationAction,
  emptyMatch,
  type Match,
  parseIp,
  type Rule,
  SpiffeId,
} from "@ambient/core";
import { describe, expect, it } from "vitest";
import { type ConnectionFacts, evaluate, explain, matches } from "./evaluate.js";

// ---- builders ----

const id = (namespace: string, serviceAccount: string, trustDomain = "cluster.local") =>
  SpiffeId.of({ trustDomain, namespace, serviceAccount });

/** `10.0.0.0/8`, `fd00::/8` or a bare address, as the xDS bytes (mapped stays 16 bytes here). */
function cidr(text: string): AddressMatch {
  const [ip = "", bits] = text.split("/");
  const address = parseIp(ip)!;
  return { address, length: bits === undefined ? address.length * 8 : Number(bits) };
}

const m = (fields: Partial<Match> = {}): Match => ({ ...emptyMatch(), ...fields });

function policy(
  action: AuthorizationAction,
  rules: Rule[],
  opts: { name?: string; namespace?: string; dryRun?: boolean } = {},
): Authorization {
  return {
    name: opts.name ?? `${action.toLowerCase()}-policy`,
    namespace: opts.namespace ?? "demo",
    scope: "NAMESPACE",
    action,
    rules,
    dryRun: opts.dryRun ?? false,
  };
}

/** A policy with one rule of one clause holding `matches`. */
const single = (action: AuthorizationAction, ...ms: Match[]) =>
  policy(action, [{ clauses: [{ matches: ms }] }]);

// The three connections of ztunnel's own rbac tests, adapted.
const plaintext: ConnectionFacts = { srcIp: "10.0.0.1", dstIp: "10.0.1.2", dstPort: 8080 };
const mtls: ConnectionFacts = { ...plaintext, srcIdentity: id("demo", "sleep") };
const alt: ConnectionFacts = {
  srcIp: "192.168.1.5",
  dstIp: "10.0.2.3",
  dstPort: 9090,
  srcIdentity: id("other", "web", "td-alt"),
};

// ---- one Match ----

describe("each Match field, positive and negative", () => {
  const cases: [string, Partial<Match>, [plaintext: boolean, mtls: boolean, alt: boolean]][] = [
    ["namespaces", { namespaces: [{ exact: "demo" }] }, [false, true, false]],
    ["notNamespaces", { notNamespaces: [{ exact: "demo" }] }, [true, false, true]],
    ["namespaces prefix", { namespaces: [{ prefix: "oth" }] }, [false, false, true]],
    ["namespaces presence", { namespaces: [{ presence: {} }] }, [false, true, true]],
    ["principals exact", { principals: [{ exact: "cluster.local/ns/demo/sa/sleep" }] }, [false, true, false]],
    [
      "notPrincipals exact",
      { notPrincipals: [{ exact: "cluster.local/ns/demo/sa/sleep" }] },
      [true, false, true],
    ],
    ["principals prefix", { principals: [{ prefix: "cluster.local/ns/demo/" }] }, [false, true, false]],
    ["principals suffix", { principals: [{ suffix: "/sa/web" }] }, [false, false, true]],
    ["principals presence", { principals: [{ presence: {} }] }, [false, true, true]],
    ["notPrincipals presence (STRICT)", { notPrincipals: [{ presence: {} }] }, [true, false, false]],
    [
      "principals never carry the scheme",
      { principals: [{ exact: "spiffe://cluster.local/ns/demo/sa/sleep" }] },
      [false, false, false],
    ],
    ["principals ORed", { principals: [{ exact: "nope" }, { suffix: "/sa/web" }] }, [false, false, true]],
    ["sourceIps /32", { sourceIps: [cidr("10.0.0.1/32")] }, [true, true, false]],
    ["notSourceIps /32", { notSourceIps: [cidr("10.0.0.1/32")] }, [false, false, true]],
    ["sourceIps ORed", { sourceIps: [cidr("172.16.0.0/12"), cidr("192.168.0.0/16")] }, [false, false, true]],
    ["sourceIps /0", { sourceIps: [cidr("0.0.0.0/0")] }, [true, true, true]],
    ["sourceIps ::/0 never holds IPv4", { sourceIps: [cidr("::/0")] }, [false, false, false]],
    ["destinationIps /24", { destinationIps: [cidr("10.0.1.0/24")] }, [true, true, false]],
    ["notDestinationIps /24", { notDestinationIps: [cidr("10.0.1.0/24")] }, [false, false, true]],
    ["destinationIps /16", { destinationIps: [cidr("10.0.0.0/16")] }, [true, true, true]],
    ["destinationPorts", { destinationPorts: [8080] }, [true, true, false]],
    ["destinationPorts list", { destinationPorts: [80, 443, 9090] }, [false, false, true]],
    ["notDestinationPorts", { notDestinationPorts: [8080] }, [false, false, true]],
    ["notDestinationPorts list", { notDestinationPorts: [8080, 9090] }, [false, false, false]],
    // fields in one Match are ANDed
    [
      "namespace AND port",
      { namespaces: [{ exact: "demo" }], destinationPorts: [8080] },
      [false, true, false],
    ],
    [
      "namespace AND wrong port",
      { namespaces: [{ exact: "demo" }], destinationPorts: [9090] },
      [false, false, false],
    ],
    [
      "ip AND notPrincipals",
      { sourceIps: [cidr("10.0.0.0/8")], notPrincipals: [{ presence: {} }] },
      [true, false, false],
    ],
    // a positive and a negative list on one field: inside the first, outside the second
    [
      "sourceIps minus notSourceIps",
      { sourceIps: [cidr("10.0.0.0/8")], notSourceIps: [cidr("10.0.0.1/32")] },
      [false, false, false],
    ],
    [
      "destinationPorts minus notDestinationPorts",
      { destinationPorts: [8080, 9090], notDestinationPorts: [8080] },
      [false, false, true],
    ],
  ];

  it.each(cases)("%s", (_name, fields, [p, t, a]) => {
    const auth = single("ALLOW", m(fields));
    expect([matches(auth, plaintext), matches(auth, mtls), matches(auth, alt)]).toEqual([p, t, a]);
  });
});

describe("addresses", () => {
  const at = (srcIp: string, dstIp = "10.0.0.9"): ConnectionFacts => ({ srcIp, dstIp, dstPort: 80 });
  it.each([
    ["IPv6 /8", { sourceIps: [cidr("fd00::/8")] }, at("fd12::1"), true],
    ["IPv6 /8 outside", { sourceIps: [cidr("fd00::/8")] }, at("fe80::1"), false],
    ["IPv6 /128", { sourceIps: [cidr("2001:db8::1/128")] }, at("2001:db8::1"), true],
    ["IPv6 /128 neighbour", { sourceIps: [cidr("2001:db8::1/128")] }, at("2001:db8::2"), false],
    ["IPv6 ::/0", { sourceIps: [cidr("::/0")] }, at("2001:db8::2"), true],
    ["IPv6 notSourceIps", { notSourceIps: [cidr("fd00::/8")] }, at("fd00::5"), false],
    ["IPv6 zone dropped", { sourceIps: [cidr("fe80::/10")] }, at("fe80::1%eth0"), true],
    ["IPv6 destination", { destinationIps: [cidr("fd00:1::/32")] }, at("10.0.0.1", "fd00:1:2::3"), true],
    ["mapped source is IPv4", { sourceIps: [cidr("10.0.0.0/8")] }, at("::ffff:10.0.0.1"), true],
    ["mapped source under notSourceIps", { notSourceIps: [cidr("10.0.0.1")] }, at("::ffff:10.0.0.1"), false],
    [
      "mapped destination is IPv4",
      { destinationIps: [cidr("10.0.0.9")] },
      at("10.0.0.1", "::ffff:10.0.0.9"),
      true,
    ],
    ["IPv4 /0 never holds IPv6", { sourceIps: [cidr("0.0.0.0/0")] }, at("fd00::1"), false],
    [
      "mapped prefix never holds a peer",
      { sourceIps: [cidr("::ffff:10.0.0.0/104")] },
      at("::ffff:10.0.0.1"),
      false,
    ],
    ["unparseable address: positive fails", { sourceIps: [cidr("0.0.0.0/0")] }, at("garbage"), false],
    [
      "unparseable address: negative excludes nothing",
      { notSourceIps: [cidr("0.0.0.0/0")] },
      at("garbage"),
      true,
    ],
  ])("%s", (_name, fields, conn, expected) => {
    expect(matches(single("ALLOW", m(fields)), conn)).toBe(expected);
  });

  it("drops malformed address entries the way ztunnel does", () => {
    const bad = { address: new Uint8Array([10, 0, 0]), length: 8 };
    // The only field is malformed: the Match is empty and skipped, so the clause never matches.
    expect(matches(single("ALLOW", m({ sourceIps: [bad] })), plaintext)).toBe(false);
    // Next to a valid field, the malformed list is no constraint.
    expect(matches(single("ALLOW", m({ sourceIps: [bad], destinationPorts: [8080] })), plaintext)).toBe(true);
  });
});

// ---- rule structure ----

describe("rules, clauses and matches", () => {
  const ns = (n: string) => m({ namespaces: [{ exact: n }] });
  const port = (p: number) => m({ destinationPorts: [p] });
  const inNs = (n: string, dstPort = 8080): ConnectionFacts => ({
    ...plaintext,
    dstPort,
    srcIdentity: id(n, "sa"),
  });

  it.each<[string, Rule[], ConnectionFacts, boolean]>([
    ["no rules (spec: {}) match nothing", [], mtls, false],
    ["a rule with no clauses (rules: [{}]) matches everything", [{ clauses: [] }], plaintext, true],
    ["a clause with no matches is true", [{ clauses: [{ matches: [] }] }], plaintext, true],
    ["an empty Match never matches", [{ clauses: [{ matches: [emptyMatch()] }] }], plaintext, false],
    [
      "an empty Match is skipped, its siblings count",
      [{ clauses: [{ matches: [emptyMatch(), port(8080)] }] }],
      plaintext,
      true,
    ],
    [
      "rules ORed: first",
      [{ clauses: [{ matches: [ns("a")] }] }, { clauses: [{ matches: [ns("b")] }] }],
      inNs("a"),
      true,
    ],
    [
      "rules ORed: second",
      [{ clauses: [{ matches: [ns("a")] }] }, { clauses: [{ matches: [ns("b")] }] }],
      inNs("b"),
      true,
    ],
    [
      "rules ORed: neither",
      [{ clauses: [{ matches: [ns("a")] }] }, { clauses: [{ matches: [ns("b")] }] }],
      inNs("c"),
      false,
    ],
    [
      "a never-matching rule does not block the next",
      [{ clauses: [{ matches: [] }, { matches: [emptyMatch()] }] }, { clauses: [] }],
      plaintext,
      true,
    ],
    [
      "clauses ANDed: both",
      [{ clauses: [{ matches: [ns("a")] }, { matches: [port(80)] }] }],
      inNs("a", 80),
      true,
    ],
    [
      "clauses ANDed: first only",
      [{ clauses: [{ matches: [ns("a")] }, { matches: [port(80)] }] }],
      inNs("a", 81),
      false,
    ],
    [
      "clauses ANDed: second only",
      [{ clauses: [{ matches: [ns("a")] }, { matches: [port(80)] }] }],
      inNs("b", 80),
      false,
    ],
    [
      "matches ORed: first",
      [{ clauses: [{ matches: [ns("a"), ns("b")] }, { matches: [port(80)] }] }],
      inNs("a", 80),
      true,
    ],
    [
      "matches ORed: second",
      [{ clauses: [{ matches: [ns("a"), ns("b")] }, { matches: [port(80)] }] }],
      inNs("b", 80),
      true,
    ],
    [
      "matches ORed: none",
      [{ clauses: [{ matches: [ns("a"), ns("b")] }, { matches: [port(80)] }] }],
      inNs("x", 80),
      false,
    ],
  ])("%s", (_name, rules, conn, expected) => {
    expect(matches(policy("ALLOW", rules), conn)).toBe(expected);
  });
});

// ---- decisions ----

describe("evaluate", () => {
  const allowAll = (name = "allow-all") => policy("ALLOW", [{ clauses: [] }], { name });
  const allowNothing = (name = "allow-nothing") => policy("ALLOW", [], { name });
  const denyAll = (name = "deny-all") => policy("DENY", [{ clauses: [] }], { name });
  const allowNs = (ns: string, name = `allow-${ns}`) =>
    policy("ALLOW", [{ clauses: [{ matches: [m({ namespaces: [{ exact: ns }] })] }] }], { name });
  const strict = policy("DENY", [{ clauses: [{ matches: [m({ notPrincipals: [{ presence: {} }] })] }] }], {
    name: "istio_converted_static_strict",
    namespace: "istio-system",
  });

  it.each<[string, Authorization[], ConnectionFacts, Partial<ReturnType<typeof evaluate>>]>([
    ["no policies allow", [], plaintext, { allowed: true, reason: "no-policies" }],
    [
      "spec: {} as ALLOW allows nothing",
      [allowNothing()],
      mtls,
      { allowed: false, reason: "no-allow-match" },
    ],
    [
      "rules: [{}] as ALLOW allows all",
      [allowAll()],
      plaintext,
      { allowed: true, reason: "allowed-by-policy", policy: "demo/allow-all" },
    ],
    [
      "spec: {} as DENY denies nothing",
      [policy("DENY", [])],
      plaintext,
      { allowed: true, reason: "no-policies" },
    ],
    [
      "rules: [{}] as DENY denies all",
      [denyAll()],
      mtls,
      { allowed: false, reason: "denied-by-policy", policy: "demo/deny-all" },
    ],
    [
      "DENY beats ALLOW",
      [allowAll(), denyAll()],
      mtls,
      { allowed: false, reason: "denied-by-policy", policy: "demo/deny-all" },
    ],
    [
      "a non-matching DENY leaves ALLOW to decide",
      [allowNs("demo"), single("DENY", m({ destinationPorts: [1] }))],
      mtls,
      { allowed: true, policy: "demo/allow-demo" },
    ],
    [
      "any ALLOW allows",
      [allowNs("a"), allowNs("demo")],
      mtls,
      { allowed: true, reason: "allowed-by-policy", policy: "demo/allow-demo" },
    ],
    [
      "no ALLOW matches",
      [allowNs("a"), allowNs("b")],
      mtls,
      { allowed: false, reason: "no-allow-match", allowPolicies: ["demo/allow-a", "demo/allow-b"] },
    ],
    [
      "STRICT denies plaintext",
      [strict],
      plaintext,
      { allowed: false, policy: "istio-system/istio_converted_static_strict" },
    ],
    ["STRICT allows mTLS", [strict], mtls, { allowed: true, reason: "no-policies" }],
    [
      "STRICT with an ALLOW: mTLS from the namespace",
      [strict, allowNs("demo")],
      mtls,
      { allowed: true, policy: "demo/allow-demo" },
    ],
    [
      "STRICT with an ALLOW: mTLS from elsewhere",
      [strict, allowNs("demo")],
      alt,
      { allowed: false, reason: "no-allow-match" },
    ],
    [
      "the first matching DENY is named",
      [denyAll("first"), denyAll("second")],
      plaintext,
      { policy: "demo/first" },
    ],
  ])("%s", (_name, policies, conn, expected) => {
    expect(evaluate(policies, conn)).toMatchObject(expected);
  });

  it("applies a STRICT port exception (PeerAuthentication portLevelMtls PERMISSIVE)", () => {
    const converted = policy(
      "DENY",
      [
        {
          clauses: [
            { matches: [m({ notPrincipals: [{ presence: {} }] })] },
            { matches: [m({ notDestinationPorts: [9090] })] },
          ],
        },
      ],
      { name: "converted_peer_authentication_web" },
    );
    expect(evaluate([converted], plaintext).allowed).toBe(false);
    expect(evaluate([converted], { ...plaintext, dstPort: 9090 }).allowed).toBe(true);
    expect(evaluate([converted], mtls).allowed).toBe(true);
  });

  describe("dry-run", () => {
    const dryDeny = policy("DENY", [{ clauses: [] }], { name: "dry-deny", dryRun: true });
    const dryAllowNothing = policy("ALLOW", [], { name: "dry-allow", dryRun: true });

    it("never decides, but reports what it would have done", () => {
      const d = evaluate([dryDeny, dryAllowNothing], mtls);
      expect(d).toMatchObject({ allowed: true, reason: "no-policies" });
      expect(d.dryRunDecisions).toEqual([
        { policy: "demo/dry-deny", action: "DENY", matched: true },
        { policy: "demo/dry-allow", action: "ALLOW", matched: false },
      ]);
    });

    it("a dry-run ALLOW does not turn on default-deny", () => {
      expect(evaluate([dryAllowNothing], mtls).allowed).toBe(true);
    });

    it("is reported even when an enforced DENY decides first", () => {
      const d = evaluate([denyAll(), dryDeny], mtls);
      expect(d).toMatchObject({ allowed: false, policy: "demo/deny-all" });
      expect(d.dryRunDecisions).toHaveLength(1);
    });

    it("is empty without dry-run policies", () => {
      expect(evaluate([allowAll()], mtls).dryRunDecisions).toEqual([]);
    });
  });

  it("sees a replaced Authorization object (compiled forms are cached per object)", () => {
    const first = allowNs("a", "p");
    expect(evaluate([first], mtls).allowed).toBe(false);
    expect(evaluate([first], mtls).allowed).toBe(false);
    expect(evaluate([allowNs("demo", "p")], mtls).allowed).toBe(true);
  });
});

describe("explain", () => {
  it.each<[string, Authorization[], ConnectionFacts, string]>([
    [
      "deny",
      [policy("DENY", [{ clauses: [] }], { name: "deny-legacy" })],
      mtls,
      "denied by policy demo/deny-legacy",
    ],
    ["allow", [policy("ALLOW", [{ clauses: [] }], { name: "a" })], mtls, "allowed by policy demo/a"],
    [
      "no allow match",
      [policy("ALLOW", [], { name: "a" }), policy("ALLOW", [], { name: "b" })],
      mtls,
      "no ALLOW policy matched (policies: demo/a, demo/b)",
    ],
    ["default allow", [], mtls, "allowed: no ALLOW policy applies"],
    [
      "dry-run",
      [policy("DENY", [{ clauses: [] }], { name: "d", dryRun: true })],
      mtls,
      "allowed: no ALLOW policy applies; dry-run: demo/d DENY matched",
    ],
  ])("%s", (_name, policies, conn, line) => {
    expect(explain(evaluate(policies, conn))).toBe(line);
  });

  it("bounds a long policy list", () => {
    const many = Array.from({ length: 15 }, (_, i) => policy("ALLOW", [], { name: `p${i}` }));
    expect(explain(evaluate(many, mtls))).toMatch(/demo\/p9 and 5 more\)$/);
  });
});
