import { describe, expect, it } from "vitest";
import { cidrContains, parseCidr, parseIp } from "./ip-match.js";

describe("ip-match", () => {
  it.each([
    ["10.1.0.0/20", "10.1.15.255", true],
    ["10.1.0.0/20", "10.1.16.0", false],
    ["10.1.2.3/8", "10.9.9.9", true], // host bits ignored, as Envoy's CidrRange
    ["0.0.0.0/0", "192.0.2.1", true],
    ["10.0.0.1", "10.0.0.1", true],
    ["10.0.0.1", "10.0.0.2", false],
    ["2001:db8::/33", "2001:db8:7fff::1", true],
    ["2001:db8::/33", "2001:db8:8000::1", false],
    ["::1", "::1", true],
    ["10.0.0.0/8", "::ffff:10.2.3.4", true], // a dual-stack socket's IPv4 peer
    ["10.0.0.0/8", "fd00::1", false],
    ["fe80::/10", "fe80::1%eth0", true],
    ["10.0.0.0/8", "[::ffff:10.0.0.1]", true],
  ])("%s contains %s → %s", (cidr, ip, want) => {
    expect(cidrContains(parseCidr(cidr)!, parseIp(ip)!)).toBe(want);
  });

  it.each(["", "10.0.0", "10.0.0.256", "010.0.0.1", "1::2::3", "10.0.0.0/33", "::/129", "10.0.0.0/", "x"])(
    "rejects %j",
    (text) => {
      expect(parseCidr(text)).toBeUndefined();
    },
  );
});
