import { describe, expect, it } from "vitest";
import { parseCniArgs, parseCniEnv } from "./env.js";
import { CniCode } from "./spec.js";

const add = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0" };

function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}

describe("CNI environment", () => {
  it("reads an ADD with its pod from CNI_ARGS", () => {
    const env = parseCniEnv({
      ...add,
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0",
    });
    expect(env.command).toBe("ADD");
    expect(env.args.get("K8S_POD_NAMESPACE")).toBe("demo");
    expect(env.args.get("K8S_POD_NAME")).toBe("web-0");
  });

  it("lists every missing variable the command requires (code 4)", () => {
    expect(() => parseCniEnv({ CNI_COMMAND: "ADD" })).toThrow(
      "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing",
    );
    expect(codeOf(() => parseCniEnv({}))).toBe(CniCode.INVALID_ENV);
    expect(codeOf(() => parseCniEnv({ ...add, CNI_NETNS: "" }))).toBe(CniCode.INVALID_ENV);
  });

  it("DEL does not need CNI_NETNS; VERSION, STATUS and GC need nothing", () => {
    expect(parseCniEnv({ ...add, CNI_COMMAND: "DEL", CNI_NETNS: undefined }).netns).toBe("");
    for (const c of ["VERSION", "STATUS", "GC"]) expect(parseCniEnv({ CNI_COMMAND: c }).command).toBe(c);
  });

  it("rejects an unknown command, a bad container id and a bad interface name (code 4)", () => {
    expect(codeOf(() => parseCniEnv({ ...add, CNI_COMMAND: "GET" }))).toBe(CniCode.INVALID_ENV);
    expect(codeOf(() => parseCniEnv({ ...add, CNI_CONTAINERID: "-bad" }))).toBe(CniCode.INVALID_ENV);
    expect(codeOf(() => parseCniEnv({ ...add, CNI_IFNAME: "a/b" }))).toBe(CniCode.INVALID_ENV);
    expect(codeOf(() => parseCniEnv({ ...add, CNI_IFNAME: "0123456789abcdef" }))).toBe(CniCode.INVALID_ENV);
  });

  it("parses CNI_ARGS pairs and rejects a pair without '='", () => {
    expect([...parseCniArgs("A=1;;B=x=y")]).toEqual([
      ["A", "1"],
      ["B", "x=y"],
    ]);
    expect(codeOf(() => parseCniArgs("A=1;oops"))).toBe(CniCode.INVALID_ENV);
  });
});
