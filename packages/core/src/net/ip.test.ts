import { describe, expect, it } from "vitest";
import {
  canonicalIp,
  cidrContains,
  cidrFromBytes,
  ipFromBytes,
  isCidrOrIp,
  parseCidr,
  parseIp,
  parsePeerIp,
} from "./ip.js";

const bytes = (...b: number[]) => new Uint8Array(b);
const v6 = (...groups: number[]) => {
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
};

describe("parseIp (manifests and policies: Go's net/netip rules)", () => {
  it("parses IPv4 into 4 bytes and IPv6 forms into 16", () => {
    expect([...parseIp("10.1.2.3")!]).toEqual([10, 1, 2, 3]);
    expect([...parseIp("fd00::1")!]).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect([...parseIp("::")!]).toEqual(new Array(16).fill(0));
    expect([...parseIp("::ffff:1.2.3.4")!].slice(10)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
    expect(parseIp("1:2:3:4:5:6:7:8")?.length).toBe(16);
    expect(parseIp("64:ff9b::1.2.3.4")?.length).toBe(16);
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "010.0.0.1",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1.2.3.4::",
    "fe80::1%eth0",
    "[::1]",
    " 10.0.0.1",
    "x",
  ])("rejects %j", (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe("parsePeerIp (what sockets and X-Forwarded-For report)", () => {
  it.each([
    ["10.1.2.3", 4],
    ["::1", 16],
    ["fe80::1%eth0", 16],
    ["[::1]", 16],
    [" 10.0.0.1 ", 4],
    ["::ffff:10.0.0.1", 4],
    ["::FFFF:a00:1", 4],
  ])("reads %j as %d bytes", (text, length) => {
    expect(parsePeerIp(text)?.length).toBe(length);
  });

  it("reads a mapped address as the IPv4 address", () => {
    expect(parsePeerIp("::ffff:10.0.0.1")).toEqual(parsePeerIp("10.0.0.1"));
    expect(parsePeerIp("::ffff:0a00:0001")).toEqual(parsePeerIp("10.0.0.1"));
  });
});

describe("canonical text", () => {
  it.each([
    [bytes(10, 0, 0, 1), "10.0.0.1"],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), "2001:db8::1"],
    [v6(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001), "10.0.0.1"],
  ])("prints %o as %s", (b, text) => {
    expect(ipFromBytes(b)).toBe(text);
  });

  it("brings every spelling of one address to one text", () => {
    expect(canonicalIp("2001:0DB8:0:0:0:0:0:1")).toBe("2001:db8::1");
    expect(canonicalIp("::ffff:127.10.1.10")).toBe("127.10.1.10");
    expect(canonicalIp("not an ip")).toBeUndefined();
    expect(ipFromBytes(bytes(1, 2, 3))).toBeUndefined();
  });
});

describe("CIDR blocks", () => {
  it.each([
    ["10.1.0.0/20", "10.1.15.255", true],
    ["10.1.0.0/20", "10.1.16.0", false],
    ["10.1.2.3/8", "10.9.9.9", true], // host bits ignored, as Envoy's CidrRange and ztunnel's IpNet
    ["0.0.0.0/0", "192.0.2.1", true],
    ["0.0.0.0/0", "::1", false],
    ["10.0.0.1", "10.0.0.1", true],
    ["10.0.0.1", "10.0.0.2", false],
    ["192.168.0.0/17", "192.168.127.255", true],
    ["192.168.0.0/17", "192.168.128.0", false],
    ["2001:db8::/33", "2001:db8:7fff::1", true],
    ["2001:db8::/33", "2001:db8:8000::1", false],
    ["2001:db8:1234:5678::/63", "2001:db8:1234:5679::", true],
    ["2001:db8:1234:5678::/64", "2001:db8:1234:5679::", false],
    ["::/0", "10.0.0.1", false],
    ["::1", "::1", true],
    ["10.0.0.0/8", "::ffff:10.2.3.4", true], // a dual-stack socket's IPv4 peer
    ["10.0.0.0/8", "fd00::1", false],
    ["fe80::/10", "fe80::1%eth0", true],
    ["10.0.0.0/8", "[::ffff:10.0.0.1]", true],
    // a mapped prefix stays IPv6: it never contains a (canonical, IPv4) peer
    ["::ffff:10.0.0.0/104", "::ffff:10.0.0.1", false],
  ])("%s contains %s → %s", (cidr, ip, want) => {
    expect(cidrContains(parseCidr(cidr)!, parsePeerIp(ip)!)).toBe(want);
  });

  it("clears host bits and treats a bare address as a host route", () => {
    expect(parseCidr("10.1.2.3/8")).toEqual({ address: bytes(10, 0, 0, 0), length: 8 });
    expect([...parseCidr("fd00:1::5/16")!.address].slice(0, 4)).toEqual([0xfd, 0, 0, 0]);
    expect(parseCidr("10.1.2.3")?.length).toBe(32);
    expect(parseCidr("::1")?.length).toBe(128);
  });

  it.each([
    "",
    "10.0.0",
    "10.0.0.256",
    "010.0.0.1",
    "1::2::3",
    "10.0.0.0/33",
    "::/129",
    "10.0.0.0/",
    "10.0.0.0/08",
    "10.0.0.0/-1",
    "a/8",
    "x",
  ])("rejects %j", (text) => {
    expect(isCidrOrIp(text)).toBe(false);
  });

  it.each([
    [bytes(10, 0, 0), 8],
    [bytes(10, 0, 0, 0), 33],
    [v6(), 129],
    [bytes(10, 0, 0, 0), -1],
    [bytes(10, 0, 0, 0), 1.5],
  ])("drops a malformed xDS prefix (%o, length %d)", (address, length) => {
    expect(cidrFromBytes(address, length)).toBeUndefined();
  });
});
