import { describe, expect, it } from "vitest";
import { isCidrOrIp, parseCidr, parseIp } from "./net.js";

describe("parseIp", () => {
  it("parses IPv4 into 4 bytes", () => {
    expect([...parseIp("10.1.2.3")!]).toEqual([10, 1, 2, 3]);
  });

  it("parses IPv6 forms into 16 bytes", () => {
    expect([...parseIp("fd00::1")!]).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect([...parseIp("::")!]).toEqual(new Array(16).fill(0));
    expect([...parseIp("::ffff:1.2.3.4")!].slice(10)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
    expect(parseIp("1:2:3:4:5:6:7:8")?.length).toBe(16);
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "fe80::1%eth0",
    "x",
  ])("rejects %j", (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe("parseCidr", () => {
  it("keeps the prefix length and clears host bits", () => {
    expect(parseCidr("10.1.2.3/8")).toEqual({ address: new Uint8Array([10, 0, 0, 0]), length: 8 });
    expect(parseCidr("fd00:1::5/16")?.length).toBe(16);
    expect([...parseCidr("fd00:1::5/16")!.address].slice(0, 4)).toEqual([0xfd, 0, 0, 0]);
  });

  it("treats a bare address as a host route", () => {
    expect(parseCidr("10.1.2.3")?.length).toBe(32);
    expect(parseCidr("::1")?.length).toBe(128);
  });

  it.each(["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "a/8"])(
    "rejects %j",
    (text) => {
      expect(isCidrOrIp(text)).toBe(false);
    },
  );
});
