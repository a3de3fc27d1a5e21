import { describe, expect, it } from "vitest";
import { parseControlPlaneConfig } from "./config.js";

const problemsOf = (argv: string[], env: Record<string, string> = {}): string[] => {
  try {
    parseControlPlaneConfig(argv, env);
  } catch (err) {
    return (err as { details: { problems: string[] } }).details.problems;
  }
  throw new Error("parsed");
};

describe("parseControlPlaneConfig", () => {
  it("folder mode: plaintext on 127.0.0.1:15010, no Kubernetes mode", () => {
    const c = parseControlPlaneConfig(["--config-dir", "/m"], {});
    expect(c.configDir).toBe("/m");
    expect(c.kube).toBeUndefined();
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 15010 });
    // No monitoring port unless asked: several local control planes share one machine.
    expect(c.monitoring).toBeUndefined();
    expect(
      parseControlPlaneConfig(["--config-dir", "/m", "--monitoring-listen", "127.0.0.1:9"], {}).monitoring,
    ).toEqual({
      host: "127.0.0.1",
      port: 9,
    });
  });

  it("Kubernetes mode from --kubeconfig: TLS on 15012 with istiod's defaults, no plaintext port", () => {
    const c = parseControlPlaneConfig(["--kubeconfig", "/k"], {});
    expect(c.listen).toBeUndefined();
    expect(c.monitoring).toEqual({ host: "0.0.0.0", port: 15014 });
    expect(c.kube).toEqual({
      kubeconfig: "/k",
      tlsListen: { host: "0.0.0.0", port: 15012 },
      servingDns: [],
      servingIps: [],
      trustedNodeAccounts: ["istio-system/ztunnel"],
      namespace: "istio-system",
      waypointImage: "localhost/ambient/waypoint:latest",
    });
  });

  it("Kubernetes mode from $KUBECONFIG or in a pod; plaintext only when --listen is given", () => {
    expect(parseControlPlaneConfig([], { KUBECONFIG: "/k" }).kube?.kubeconfig).toBe("/k");
    expect(
      parseControlPlaneConfig([], { KUBECONFIG: "/k", WAYPOINT_IMAGE: "registry.example/waypoint:1.2" }).kube
        ?.waypointImage,
    ).toBe("registry.example/waypoint:1.2");
    const inPod = parseControlPlaneConfig(["--listen", "0.0.0.0:15010"], {
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      POD_NAMESPACE: "mesh",
      CA_TRUSTED_NODE_ACCOUNTS: "mesh/ztunnel, kube-system/node-proxy",
    });
    expect(inPod.kube).toMatchObject({
      kubeconfig: undefined,
      namespace: "mesh",
      trustedNodeAccounts: ["mesh/ztunnel", "kube-system/node-proxy"],
    });
    expect(inPod.listen).toEqual({ host: "0.0.0.0", port: 15010 });
  });

  it("$KUBECONFIG beside --config-dir is a note, not a mode", () => {
    const c = parseControlPlaneConfig(["--config-dir", "/m"], { KUBECONFIG: "/k" });
    expect(c.kube).toBeUndefined();
    expect(c.notes).toEqual(["$KUBECONFIG is set but --config-dir chose folder mode"]);
  });

  it("lists every problem at once", () => {
    expect(problemsOf(["--config-dir", "/m", "--kubeconfig", "/k", "--serving-ips", "1.2.3.4"])).toEqual([
      "--config-dir and --kubeconfig together: serve a folder or a cluster, not both",
      "--serving-ips applies to Kubernetes mode only (--config-dir chose folder mode)",
    ]);
    expect(
      problemsOf([
        "--kubeconfig",
        "/k",
        "--serving-dns",
        "ok.example,Not_A_Name",
        "--serving-ips",
        "127.0.0.1,10.0.0.300",
        "--trusted-node-accounts",
        "istio-system/ztunnel,ztunnel",
      ]),
    ).toEqual([
      '--serving-dns: "Not_A_Name" is not a DNS name',
      '--serving-ips: "10.0.0.300" is not an IP',
      '--trusted-node-accounts: "ztunnel" is not <namespace>/<service account>',
    ]);
    expect(problemsOf([])).toEqual([expect.stringMatching(/^nothing to serve: --config-dir/)]);
  });
});
