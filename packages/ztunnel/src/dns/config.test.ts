import { describe, expect, it } from "vitest";
import { parseZtunnelConfig } from "../config.js";

const base = ["--node-name", "n", "--xds-address", "127.0.0.1:15010"];
const resolvConf = () => "nameserver 10.96.0.10\n";

describe("ztunnel DNS proxy flags", () => {
  it("off by default", () => {
    expect(parseZtunnelConfig(base, {}, resolvConf).dns).toBeUndefined();
  });

  it("--dns-proxy (or ISTIO_META_DNS_CAPTURE) with the node's resolver as upstream", () => {
    expect(parseZtunnelConfig([...base, "--dns-proxy"], {}, resolvConf).dns).toEqual({
      upstream: { host: "10.96.0.10", port: 53 },
      upstreamTimeoutMs: 4000,
    });
    expect(parseZtunnelConfig(base, { ISTIO_META_DNS_CAPTURE: "true" }, resolvConf).dns).toBeDefined();
  });

  it("--dns-upstream and --dns-upstream-timeout", () => {
    const args = [
      ...base,
      "--dns-proxy",
      "--dns-upstream",
      "127.0.0.53:5353",
      "--dns-upstream-timeout",
      "1s",
    ];
    expect(parseZtunnelConfig(args, {}, resolvConf).dns).toEqual({
      upstream: { host: "127.0.0.53", port: 5353 },
      upstreamTimeoutMs: 1000,
    });
    expect(() => parseZtunnelConfig([...base, "--dns-proxy", "--dns-upstream", "dns:53"], {})).toThrow(
      /--dns-upstream/,
    );
  });
});
