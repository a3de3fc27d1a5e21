import { describe, expect, it } from "vitest";
import { cidrContains, compileCidr, parseIp } from "./ip.js";

const bytes = (...b: number[]) => new Uint8Array(b);
const v6 = (...groups: number[]) => {
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
};

/** `10.0.0.0/8` or `fd00:0:0:0:0:0:0:0/8`, for test names. */
const label = (b: Uint8Array, length: number) => {
  if (b.length === 4) return `${b.join(".")}/${length}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16));
  return `${groups.join(":")}/${length}`;
};

describe("parseIp", () => {
  it.each([
    ["10.1.2.3", 4],
    ["0.0.0.0", 4],
    ["255.255.255.255", 4],
    ["::", 6],
    ["::1", 6],
    ["fd00::1", 6],
    ["1:2:3:4:5:6:7:8", 6],
    ["64:ff9b::1.2.3.4", 6],
    ["fe80::1%eth0", 6],
    ["::ffff:10.0.0.1", 4],
    ["::FFFF:a00:1", 4],
  ])("parses %j as IPv%d", (text, family) => {
    expect(parseIp(text)?.family).toBe(family);
  });

  it("reads a mapped address as the IPv4 address", () => {
    expect(parseIp("::ffff:10.0.0.1")).toEqual(parseIp("10.0.0.1"));
    expect(parseIp("::ffff:0a00:0001")).toEqual(parseIp("10.0.0.1"));
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "x",
    "1.2.3.4::",
  ])("rejects %j", (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe("CIDR containment", () => {
  const contains = (address: Uint8Array, length: number, ip: string) => {
    const cidr = compileCidr({ address, length });
    const addr = parseIp(ip);
    if (!cidr || !addr) throw new Error("bad fixture");
    return cidrContains(cidr, addr);
  };

  const rows: [Uint8Array, number, string, boolean][] = [
    // IPv4
    [bytes(10, 0, 0, 0), 8, "10.255.1.2", true],
    [bytes(10, 0, 0, 0), 8, "11.0.0.0", false],
    [bytes(10, 1, 2, 3), 32, "10.1.2.3", true],
    [bytes(10, 1, 2, 3), 32, "10.1.2.4", false],
    [bytes(0, 0, 0, 0), 0, "203.0.113.9", true],
    [bytes(0, 0, 0, 0), 0, "::1", false],
    [bytes(192, 168, 0, 0), 17, "192.168.127.255", true],
    [bytes(192, 168, 0, 0), 17, "192.168.128.0", false],
    [bytes(128, 0, 0, 0), 1, "200.0.0.1", true],
    [bytes(128, 0, 0, 0), 1, "100.0.0.1", false],
    // host bits in the prefix are ignored, as ztunnel's IpNet does
    [bytes(10, 1, 2, 3), 8, "10.9.9.9", true],
    // mapped peers are IPv4
    [bytes(10, 0, 0, 0), 8, "::ffff:10.0.0.1", true],
    // IPv6
    [v6(0xfd00), 8, "fd12:3456::1", true],
    [v6(0xfd00), 8, "fe80::1", false],
    [v6(0xfe80), 10, "fe80::1%eth0", true],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 128, "2001:db8::1", true],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 128, "2001:db8::2", false],
    [v6(0x2001, 0xdb8, 0x1234, 0x5678), 63, "2001:db8:1234:5679::", true],
    [v6(0x2001, 0xdb8, 0x1234, 0x5678), 64, "2001:db8:1234:5679::", false],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0x8000), 97, "2001:db8::8000:1", true],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0x8000), 97, "2001:db8::4000:1", false],
    [v6(), 0, "::1", true],
    [v6(), 0, "10.0.0.1", false],
    // a 16-byte mapped prefix is IPv6: it never contains a (canonical, IPv4) peer, as in ztunnel
    [v6(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0), 104, "::ffff:10.0.0.1", false],
  ];
  it.each(
    rows.map(
      ([address, length, ip, expected]) => [label(address, length), ip, expected, address, length] as const,
    ),
  )("%s contains %s: %s", (_label, ip, expected, address, length) => {
    expect(contains(address, length, ip)).toBe(expected);
  });

  it.each([
    [bytes(10, 0, 0), 8],
    [bytes(10, 0, 0, 0), 33],
    [v6(), 129],
    [bytes(10, 0, 0, 0), -1],
    [bytes(10, 0, 0, 0), 1.5],
  ])("drops a malformed prefix (%o, length %d)", (address, length) => {
    expect(compileCidr({ address, length })).toBeUndefined();
  });
});
