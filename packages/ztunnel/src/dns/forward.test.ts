import { describe, expect, it } from "vitest";
import { firstNameserver, parseUpstream, systemUpstream } from "./forward.js";

describe("upstream resolver", () => {
  it("takes the first nameserver of resolv.conf", () => {
    const text =
      "# generated\nsearch demo.svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\noptions ndots:5\n";
    expect(firstNameserver(text)).toBe("10.96.0.10");
    expect(systemUpstream(() => text)).toEqual({ host: "10.96.0.10", port: 53 });
    expect(systemUpstream(() => "nameserver fe80::1%eth0\n")).toEqual({ host: "fe80::1%eth0", port: 53 });
  });

  it("falls back to the local host without resolv.conf or nameserver, as glibc", () => {
    expect(
      systemUpstream(() => {
        throw new Error("ENOENT");
      }),
    ).toEqual({ host: "127.0.0.1", port: 53 });
    expect(systemUpstream(() => "search x\n")).toEqual({ host: "127.0.0.1", port: 53 });
  });

  it("parses --dns-upstream", () => {
    expect(parseUpstream("10.0.0.1:5353")).toEqual({ host: "10.0.0.1", port: 5353 });
    expect(parseUpstream("10.0.0.1")).toEqual({ host: "10.0.0.1", port: 53 });
    expect(parseUpstream("[fd00::1]:53")).toEqual({ host: "fd00::1", port: 53 });
    expect(parseUpstream("fd00::1")).toEqual({ host: "fd00::1", port: 53 });
    expect(parseUpstream("dns.example:53")).toBeUndefined();
    expect(parseUpstream("10.0.0.1:99999")).toBeUndefined();
  });
});
