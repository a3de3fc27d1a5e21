import { describe, expect, it } from "vitest";
import { DEFAULT_AGENT_SOCKET, parsePluginConfig, replyVersion } from "./config.js";
import { CniCode, CniError, errorJson, versionAtLeast } from "./spec.js";

const conf = (o: Record<string, unknown>) =>
  JSON.stringify({ cniVersion: "1.0.0", name: "pods", type: "ambient-cni", ...o });

function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}

describe("plugin config", () => {
  it("fills defaults and keeps prevResult as given", () => {
    const prevResult = { cniVersion: "1.0.0", ips: [{ address: "198.19.1.5/24" }], extra: { kept: true } };
    const c = parsePluginConfig(conf({ prevResult }));
    expect(c.agentSocket).toBe(DEFAULT_AGENT_SOCKET);
    expect(c.excludeNamespaces).toEqual(["kube-system"]);
    expect(c.prevResult).toEqual(prevResult);
  });

  it("not JSON, or not an object → code 6", () => {
    expect(codeOf(() => parsePluginConfig("{nope"))).toBe(CniCode.DECODE_FAILURE);
    expect(codeOf(() => parsePluginConfig("[1]"))).toBe(CniCode.DECODE_FAILURE);
  });

  it("no network name → code 7", () => {
    expect(codeOf(() => parsePluginConfig(conf({ name: "" })))).toBe(CniCode.INVALID_CONFIG);
  });

  it("an unknown or missing cniVersion → code 1", () => {
    expect(codeOf(() => parsePluginConfig(conf({ cniVersion: "9.9.9" })))).toBe(CniCode.INCOMPATIBLE_VERSION);
    expect(codeOf(() => parsePluginConfig(conf({ cniVersion: undefined })))).toBe(
      CniCode.INCOMPATIBLE_VERSION,
    );
    expect(codeOf(() => parsePluginConfig(conf({ cniVersion: "0.2.0" })))).toBe(CniCode.INCOMPATIBLE_VERSION);
  });

  it("lists every bad field of ours at once (code 7)", () => {
    try {
      parsePluginConfig(
        conf({ agentSocket: 3, excludeNamespaces: "x", excludePods: ["nope"], prevResult: [] }),
      );
      expect.unreachable();
    } catch (err) {
      const e = err as CniError;
      expect(e.code).toBe(CniCode.INVALID_CONFIG);
      for (const f of ["agentSocket", "excludeNamespaces", "excludePods[0]", "prevResult"])
        expect(e.message).toContain(f);
    }
  });

  it("answers errors in the config's version when we speak it", () => {
    expect(replyVersion(conf({ cniVersion: "0.4.0" }))).toBe("0.4.0");
    expect(replyVersion(conf({ cniVersion: "7.0.0" }))).toBe("1.1.0");
    expect(replyVersion("garbage")).toBe("1.1.0");
    expect(JSON.parse(errorJson(new CniError(7, "m", "d"), "1.0.0"))).toEqual({
      cniVersion: "1.0.0",
      code: 7,
      msg: "m",
      details: "d",
    });
  });

  it("compares versions numerically", () => {
    expect(versionAtLeast("1.1.0", "1.1.0")).toBe(true);
    expect(versionAtLeast("0.10.0", "0.4.0")).toBe(true);
    expect(versionAtLeast("0.3.1", "0.4.0")).toBe(false);
  });
});
