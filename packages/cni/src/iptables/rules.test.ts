import { hasCode } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { IptablesErrorCode } from "./errors.js";
import { hostProbeRules, inPodRules, podIpsOf, renderRestore } from "./rules.js";

const rulesOf = (family: "ipv4" | "ipv6", table: string) =>
  inPodRules(family).tables.find((t) => t.table === table)?.rules ?? [];

describe("in-pod rules", () => {
  it("jump from the built-in chains into ours, in nat and mangle", () => {
    for (const table of ["nat", "mangle"]) {
      expect(rulesOf("ipv4", table)).toContain("-A PREROUTING -j AMBIENT_PRERT");
      expect(rulesOf("ipv4", table)).toContain("-A OUTPUT -j AMBIENT_OUTPUT");
    }
  });

  it("redirects inbound TCP except 15008 and ztunnel's marked packets to 15006", () => {
    expect(rulesOf("ipv4", "nat")).toContain(
      "-A AMBIENT_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006",
    );
  });

  it("redirects outbound TCP not to loopback and not marked 0x539 to 15001, as the last rule", () => {
    const nat = rulesOf("ipv4", "nat");
    expect(nat.at(-1)).toBe(
      "-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001",
    );
  });

  it("accepts the probe address before redirecting, both ways", () => {
    const nat = rulesOf("ipv4", "nat");
    const probeIn = nat.indexOf("-A AMBIENT_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT");
    const redirectIn = nat.findIndex((r) => r.includes("--to-ports 15006"));
    expect(probeIn).toBeGreaterThanOrEqual(0);
    expect(probeIn).toBeLessThan(redirectIn);
    expect(nat).toContain("-A AMBIENT_OUTPUT -d 169.254.7.127/32 -p tcp -m tcp -j ACCEPT");
  });

  it("lets the app reach its own pod address over lo, before the outbound redirect", () => {
    const nat = rulesOf("ipv4", "nat");
    const lo = nat.indexOf("-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT");
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(lo).toBeLessThan(nat.findIndex((r) => r.includes("--to-ports 15001")));
  });

  it("connmarks ztunnel's packets and restores the mark on replies (mangle)", () => {
    expect(rulesOf("ipv4", "mangle")).toEqual([
      "-A PREROUTING -j AMBIENT_PRERT",
      "-A OUTPUT -j AMBIENT_OUTPUT",
      "-A AMBIENT_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff",
      "-A AMBIENT_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
    ]);
  });

  it("IPv6 is the same with ::1 and Istio's IPv6 probe address", () => {
    const v4 = rulesOf("ipv4", "nat");
    const v6 = rulesOf("ipv6", "nat");
    expect(v6).toEqual(
      v4.map((r) =>
        r
          .replaceAll("127.0.0.1/32", "::1/128")
          .replaceAll("169.254.7.127/32", "fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128"),
      ),
    );
    expect(rulesOf("ipv6", "mangle")).toEqual(rulesOf("ipv4", "mangle"));
  });

  it("DNS capture off (the default): nothing about port 53", () => {
    expect(rulesOf("ipv4", "nat").some((r) => r.includes("--dport 53 "))).toBe(false);
    expect(inPodRules("ipv4", { dnsCapture: false })).toEqual(inPodRules("ipv4"));
  });

  it("DNS capture: UDP and TCP port 53 not to loopback and not ztunnel's go to 15053, before lo and outbound", () => {
    const nat = inPodRules("ipv4", { dnsCapture: true }).tables.find((t) => t.table === "nat")!.rules;
    const udp = nat.indexOf(
      "-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -p udp -m udp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053",
    );
    const tcp = nat.indexOf(
      "-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053",
    );
    expect(udp).toBeGreaterThanOrEqual(0);
    expect(tcp).toBeGreaterThanOrEqual(0);
    const lo = nat.indexOf("-A AMBIENT_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT");
    expect(Math.max(udp, tcp)).toBeLessThan(lo);
    expect(nat.at(-1)).toContain("--to-ports 15001");
    // Everything else is unchanged.
    expect(nat.filter((r) => !r.includes("15053"))).toEqual(rulesOf("ipv4", "nat"));
    const v6 = inPodRules("ipv6", { dnsCapture: true }).tables.find((t) => t.table === "nat")!.rules;
    expect(v6.filter((r) => r.includes("15053")).every((r) => r.includes("! -d ::1/128"))).toBe(true);
  });

  it("renders iptables-restore text that declares our chains", () => {
    const text = renderRestore(inPodRules("ipv4"));
    expect(text).toMatch(/^\*mangle\n:AMBIENT_PRERT - \[0:0\]\n:AMBIENT_OUTPUT - \[0:0\]\n/);
    expect(text).toContain(
      "*nat\n:AMBIENT_PRERT - [0:0]\n:AMBIENT_OUTPUT - [0:0]\n-A PREROUTING -j AMBIENT_PRERT\n",
    );
    expect(text.match(/^COMMIT$/gm)).toHaveLength(2);
  });
});

describe("host probe rules", () => {
  it("one SNAT rule per pod of the family, sorted and deduplicated", () => {
    const ips = ["198.19.1.9", "fd00::5", "198.19.1.5", "198.19.1.9"];
    expect(hostProbeRules("ipv4", ips).tables[0]?.rules).toEqual([
      "-A POSTROUTING -j AMBIENT_POSTRT",
      "-A AMBIENT_POSTRT -d 198.19.1.5/32 -p tcp -m owner --socket-exists -j SNAT --to-source 169.254.7.127",
      "-A AMBIENT_POSTRT -d 198.19.1.9/32 -p tcp -m owner --socket-exists -j SNAT --to-source 169.254.7.127",
    ]);
    expect(hostProbeRules("ipv6", ips).tables[0]?.rules).toEqual([
      "-A POSTROUTING -j AMBIENT_POSTRT",
      "-A AMBIENT_POSTRT -d fd00::5/128 -p tcp -m owner --socket-exists -j SNAT --to-source fd16:9254:7127:1337:ffff:ffff:ffff:ffff",
    ]);
  });

  it("no pods of a family: nothing of ours in that family", () => {
    expect(hostProbeRules("ipv6", ["198.19.1.5"]).tables).toEqual([]);
  });

  it("rejects anything that is not an IP (it would end up in iptables-restore input)", () => {
    for (const bad of ["198.19.1.5\n-A OUTPUT -j DROP", "pod", "fe80::1%eth0", ""]) {
      let err: unknown;
      try {
        podIpsOf("ipv4", [bad]);
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, IptablesErrorCode.INVALID_ARGUMENT), bad).toBe(true);
    }
    expect(podIpsOf("ipv6", ["FD00:0:0::5"])).toEqual(["fd00::5"]);
  });
});
