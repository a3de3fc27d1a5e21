import { describe, expect, it } from "vitest";
import { nodePathMapper } from "./node-paths.js";

describe("nodePathMapper", () => {
  const map = nodePathMapper({
    root: "/state/nodes/n1/root",
    shared: { "/opt/cni/bin": "/topo/n1/bin", "/var/run/netns": "/var/run/netns" },
  });

  it("puts a node path under the node's root", () => {
    expect(map("/var/run/ztunnel")).toBe("/state/nodes/n1/root/var/run/ztunnel");
    expect(map("/run/xtables.lock")).toBe("/state/nodes/n1/root/run/xtables.lock");
  });

  it("keeps the shared folders and what is under them, and nothing that only starts alike", () => {
    expect(map("/opt/cni/bin")).toBe("/topo/n1/bin");
    expect(map("/opt/cni/bin/")).toBe("/topo/n1/bin");
    expect(map("/opt/cni/bin/ambient-cni")).toBe("/topo/n1/bin/ambient-cni");
    expect(map("/var/run/netns")).toBe("/var/run/netns");
    expect(map("/opt/cni/binaries")).toBe("/state/nodes/n1/root/opt/cni/binaries");
  });

  it("never leaves the root through ..", () => {
    expect(map("/var/../../etc/passwd")).toBe("/state/nodes/n1/root/etc/passwd");
  });

  it("refuses a relative path by name", () => {
    expect(() => map("var/run")).toThrow(/hostPath "var\/run" is not an absolute path/);
  });
});
