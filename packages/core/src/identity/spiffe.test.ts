import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import { parseTrustDomain, SpiffeId } from "./spiffe.js";

describe("SpiffeId.parse", () => {
  it.each([
    [
      "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
      "cluster.local",
      "default",
      "bookinfo-productpage",
    ],
    ["spiffe://td/ns/a/sa/b", "td", "a", "b"],
    ["spiffe://my_td-1.example.com/ns/Team.A_b-c/sa/SA_1.x", "my_td-1.example.com", "Team.A_b-c", "SA_1.x"],
    ["spiffe://cluster.local/ns/.hidden/sa/...", "cluster.local", ".hidden", "..."],
  ])("accepts %s", (uri, td, ns, sa) => {
    const id = SpiffeId.parse(uri);
    expect(id.trustDomain).toBe(td);
    expect(id.namespace).toBe(ns);
    expect(id.serviceAccount).toBe(sa);
    expect(id.toString()).toBe(uri);
    expect(JSON.stringify({ id })).toBe(JSON.stringify({ id: uri }));
    expect(Object.isFrozen(id)).toBe(true);
  });

  // Each malformed case and the words the message must contain to say which part is wrong.
  it.each([
    ["", "is empty"],
    ["cluster.local/ns/a/sa/b", 'does not start with "spiffe://"'],
    ["https://cluster.local/ns/a/sa/b", 'has scheme "https"'],
    ["SPIFFE://cluster.local/ns/a/sa/b", 'must be lowercase "spiffe"'],
    ["spiffe:/cluster.local/ns/a/sa/b", 'has scheme "spiffe"; expected "spiffe://"'],
    ["spiffe:///ns/a/sa/b", "empty trust domain"],
    ["spiffe://", "empty trust domain"],
    ["spiffe://Cluster.local/ns/a/sa/b", 'uppercase "C"'],
    ["spiffe://cluster.local:8080/ns/a/sa/b", 'invalid character ":"'],
    ["spiffe://user@cluster.local/ns/a/sa/b", 'invalid character "@"'],
    ["spiffe://cluster%2elocal/ns/a/sa/b", 'invalid character "%"'],
    [`spiffe://${"a".repeat(256)}/ns/a/sa/b`, "which is 256 characters long"],
    ["spiffe://cluster.local", "has no path"],
    ["spiffe://cluster.local/", "empty path segment at position 1"],
    ["spiffe://cluster.local/ns/a/sa/b/", "empty path segment at position 5"],
    ["spiffe://cluster.local/ns//sa/b", "empty path segment at position 2"],
    ["spiffe://cluster.local//ns/a/sa/b", "empty path segment at position 1"],
    ["spiffe://cluster.local/ns/a/sa/b/extra", "has 5 path segments; expected 4"],
    ["spiffe://cluster.local/ns/a/sa", "has 3 path segments; expected 4"],
    ["spiffe://cluster.local/ns/a", "has 2 path segments"],
    ["spiffe://cluster.local/namespace/a/sa/b", 'path segment 1 "namespace"; expected "ns"'],
    ["spiffe://cluster.local/ns/a/serviceaccount/b", 'path segment 3 "serviceaccount"; expected "sa"'],
    ["spiffe://cluster.local/NS/a/sa/b", 'path segment 1 "NS"; expected "ns"'],
    ["spiffe://cluster.local/ns/./sa/b", '"." path segment at position 2'],
    ["spiffe://cluster.local/ns/a/sa/..", '".." path segment at position 4'],
    ["spiffe://cluster.local/ns/a b/sa/b", 'invalid character " "'],
    ["spiffe://cluster.local/ns/a%20b/sa/b", 'invalid character "%"'],
    ["spiffe://cluster.local/ns/ä/sa/b", 'invalid character "ä"'],
    ["spiffe://cluster.local/ns/a/sa/b?x=1", 'has a query ("?x=1")'],
    ["spiffe://cluster.local/ns/a/sa/b#frag", 'has a fragment ("#frag")'],
    [`spiffe://td/ns/${"a".repeat(2100)}/sa/b`, "the limit is 2048"],
  ])("rejects %j", (uri, words) => {
    let caught: unknown;
    try {
      SpiffeId.parse(uri);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: ErrorCode.IDENTITY_MALFORMED });
    expect((caught as Error).message).toContain(words);
    expect((caught as Error).message.length).toBeLessThan(600);
    expect(SpiffeId.tryParse(uri)).toBeUndefined();
  });

  it("rejects a non-string at runtime", () => {
    expect(() => SpiffeId.parse(42 as unknown as string)).toThrow(/is a number/);
  });
});

describe("SpiffeId", () => {
  it("tryParse returns the same value parse would", () => {
    const uri = "spiffe://cluster.local/ns/a/sa/b";
    expect(SpiffeId.tryParse(uri)?.equals(SpiffeId.parse(uri))).toBe(true);
  });

  it("of validates each part and round-trips", () => {
    const id = SpiffeId.of({ trustDomain: "cluster.local", namespace: "ns1", serviceAccount: "sa1" });
    expect(id.toString()).toBe("spiffe://cluster.local/ns/ns1/sa/sa1");
    expect(() =>
      SpiffeId.of({ trustDomain: "cluster.local", namespace: "a/b", serviceAccount: "x" }),
    ).toThrow(/path segments/);
  });

  it("parseTrustDomain accepts valid and names the problem in invalid ones", () => {
    expect(parseTrustDomain("cluster.local")).toBe("cluster.local");
    expect(() => parseTrustDomain("Cluster.local")).toThrow(
      'trust domain "Cluster.local" contains uppercase "C"',
    );
    expect(() => parseTrustDomain("")).toThrow('trust domain "" is empty');
    expect(() => parseTrustDomain("a/b")).toThrow('invalid character "/" at offset 1');
  });

  it("equals compares by value", () => {
    const a = SpiffeId.parse("spiffe://cluster.local/ns/a/sa/b");
    expect(a.equals(SpiffeId.parse("spiffe://cluster.local/ns/a/sa/b"))).toBe(true);
    expect(a.equals(SpiffeId.parse("spiffe://cluster.local/ns/a/sa/B"))).toBe(false);
    expect(a.equals(SpiffeId.parse("spiffe://other.local/ns/a/sa/b"))).toBe(false);
    expect(a.equals(undefined)).toBe(false);
  });
});
