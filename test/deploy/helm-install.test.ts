// `helm install ambient deploy/charts/ambient -n istio-system --create-namespace` against the test
// API server with the real helm 4 and kubectl 1.35, as a user would on a cluster (no --wait: no
// kubelet runs the pods here): the objects are there, an upgrade of the tag rolls the DaemonSet's
// image, uninstall removes the release and keeps the CRDs. A cluster that already has Gateway API
// keeps its own CRDs.

import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KubeClients, kubeClients, mustRun } from "../utils/kube.js";
import { CHART } from "./chart.js";

const NS = "istio-system";

describe("helm install of the chart on an empty cluster", () => {
  let server: TestApiServer;
  let clients: KubeClients;
  const { k: kubectl, helm } = mustRun(() => clients);

  beforeAll(async () => {
    server = await startTestApiServer();
    clients = await kubeClients(server.kubeconfigPath);
  });
  afterAll(async () => {
    await clients?.cleanup();
    await server?.stop();
  });

  it("installs, upgrades the tag and uninstalls", { timeout: 180_000 }, async () => {
    const installed = await helm("install", "ambient", CHART, "-n", NS, "--create-namespace");
    expect(installed).toContain("STATUS: deployed");
    expect(installed).toContain("kubectl label namespace <ns> istio.io/dataplane-mode=ambient");

    const names = (
      await kubectl(
        "get",
        "daemonsets,deployments,services,serviceaccounts,poddisruptionbudgets",
        "-n",
        NS,
        "-o",
        "name",
      )
    )
      .split("\n")
      .filter(Boolean);
    expect(names).toEqual(
      expect.arrayContaining([
        "daemonset.apps/ztunnel",
        "daemonset.apps/istio-cni-node",
        "deployment.apps/istiod",
        "service/istiod",
        "serviceaccount/ztunnel",
        "serviceaccount/istio-cni",
        "serviceaccount/istiod",
        "poddisruptionbudget.policy/istiod",
      ]),
    );
    const crds = await kubectl("get", "crds", "-o", "name");
    for (const crd of ["authorizationpolicies.security.istio.io", "gateways.gateway.networking.k8s.io"]) {
      expect(crds).toContain(`customresourcedefinition.apiextensions.k8s.io/${crd}`);
    }
    expect(await kubectl("get", "clusterroles", "-o", "name")).toContain(
      "clusterrole.rbac.authorization.k8s.io/istiod-istio-system",
    );
    // The kinds the CRDs define are served: a user's policy can be applied right away.
    await kubectl("get", "authorizationpolicies,peerauthentications,gateways", "-A");

    const image = () =>
      kubectl(
        "get",
        "daemonset",
        "ztunnel",
        "-n",
        NS,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
      );
    expect(await image()).toBe("localhost/ambient/ztunnel:0.1.0");
    await helm("upgrade", "ambient", CHART, "-n", NS, "--reuse-values", "--set", "global.tag=0.2.0");
    expect(await image()).toBe("localhost/ambient/ztunnel:0.2.0");
    // The Gateway API CRDs this release installed stay in it on upgrade (IfAbsent looks them up).
    expect(await helm("get", "manifest", "ambient", "-n", NS)).toContain(
      "name: gateways.gateway.networking.k8s.io",
    );

    await helm("uninstall", "ambient", "-n", NS);
    expect(
      await kubectl("get", "daemonsets,deployments,services,serviceaccounts", "-n", NS, "-o", "name"),
    ).not.toMatch(/ztunnel|istiod|istio-cni/);
    expect(await kubectl("get", "clusterroles", "-o", "name")).not.toContain("istiod-istio-system");
    // CRDs carry helm.sh/resource-policy: keep: uninstalling must not delete every user's policies.
    expect(await kubectl("get", "crds", "-o", "name")).toContain("authorizationpolicies.security.istio.io");
  });
});

describe("helm install on a cluster that already has Gateway API", () => {
  let server: TestApiServer;
  let clients: KubeClients;
  const { k: kubectl, helm } = mustRun(() => clients);

  beforeAll(async () => {
    // Someone else's Gateway API install (no Helm ownership annotations).
    server = await startTestApiServer({
      objects: istioCrds().filter((c) => String(c.metadata.name).endsWith(".gateway.networking.k8s.io")),
    });
    clients = await kubeClients(server.kubeconfigPath);
  });
  afterAll(async () => {
    await clients?.cleanup();
    await server?.stop();
  });

  it("leaves the cluster's Gateway API CRDs alone and installs the rest", { timeout: 180_000 }, async () => {
    await helm("install", "ambient", CHART, "-n", NS, "--create-namespace");
    const manifest = await helm("get", "manifest", "ambient", "-n", NS);
    expect(manifest).not.toContain("gateway.networking.k8s.io\n  names:");
    expect(manifest).not.toContain("name: gateways.gateway.networking.k8s.io");
    expect(manifest).toContain("name: authorizationpolicies.security.istio.io");
    const owner = await kubectl(
      ...["get", "crd", "gateways.gateway.networking.k8s.io", "-o", "jsonpath={.metadata.annotations}"],
    );
    expect(owner).not.toContain("meta.helm.sh/release-name");
  });
});
