import { describe, expect, it } from "vitest";
import { parseAgentConfig } from "./config.js";

const node = ["--node-name", "node-a"];

describe("parseAgentConfig: where pods come from", () => {
  it("a manifests folder, a kubeconfig, or in-cluster from the pod's service account", () => {
    expect(parseAgentConfig([...node, "--manifests", "/m"], {}).cluster).toEqual({
      kind: "manifests",
      dir: "/m",
    });
    expect(parseAgentConfig(node, { KUBECONFIG: "/k" }).cluster).toEqual({ kind: "kube", kubeconfig: "/k" });
    expect(parseAgentConfig(node, { KUBERNETES_SERVICE_HOST: "10.96.0.1" }).cluster).toEqual({
      kind: "kube",
      kubeconfig: undefined,
    });
  });

  it("refuses both flags, and neither; a shell's $KUBECONFIG never overrides --manifests", () => {
    expect(() => parseAgentConfig([...node, "--manifests", "/m", "--kubeconfig", "/k"], {})).toThrow(
      /--manifests and --kubeconfig exclude each other/,
    );
    expect(parseAgentConfig([...node, "--manifests", "/m"], { KUBECONFIG: "/k" }).cluster.kind).toBe(
      "manifests",
    );
    expect(() => parseAgentConfig(node, {})).toThrow(/give --manifests or --kubeconfig, or run in a pod/);
  });

  it("always excludes kube-system, plus --exclude-namespaces; readiness on Istio's 8000", () => {
    const c = parseAgentConfig(
      [...node, "--manifests", "/m", "--exclude-namespaces", "legacy, kube-system,ops"],
      {},
    );
    expect(c.excludeNamespaces).toEqual(["kube-system", "legacy", "ops"]);
    expect(c.readinessPort).toBe(8000);
    expect(parseAgentConfig([...node, "--manifests", "/m"], {}).excludeNamespaces).toEqual(["kube-system"]);
  });

  it("DNS capture: off by default, --dns-capture or Istio's AMBIENT_DNS_CAPTURE turns it on", () => {
    const m = [...node, "--manifests", "/m"];
    expect(parseAgentConfig(m, {}).dnsCapture).toBe(false);
    expect(parseAgentConfig([...m, "--dns-capture"], {}).dnsCapture).toBe(true);
    expect(parseAgentConfig(m, { AMBIENT_DNS_CAPTURE: "true" }).dnsCapture).toBe(true);
  });
});
