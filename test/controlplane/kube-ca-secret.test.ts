// Kubernetes mode keeps its self-signed root in Secret istio-system/istio-ca-secret, as istiod does:
// the first control plane creates it (Istio's layout, seen with the real kubectl), a restarted or
// second replica reads the same root instead of making its own (so an upgrade does not cut off
// workloads holding certificates of the old root), a root istiod left behind is taken over, and a
// broken Secret stops the start with a message naming the Secret and key, never replaced.

import { CertificateAuthority } from "@ambient/core";
import { startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import { type RunningKubeControlPlane, startKubeControlPlane } from "../utils/kube-controlplane.js";

let api: TestApiServer;
let kube: KubeClients;
const running: RunningKubeControlPlane[] = [];

beforeAll(async () => {
  api = await startTestApiServer({
    objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } }] as never,
  });
  kube = await kubeClients(api.kubeconfigPath);
}, 60_000);

afterEach(async () => {
  for (const env of running.splice(0)) await env.stop();
  await kube.kubectl(["delete", "secret", "istio-ca-secret", "-n", "istio-system", "--ignore-not-found"]);
});

afterAll(async () => {
  await kube?.cleanup();
  await api?.stop();
});

async function start(): Promise<RunningKubeControlPlane> {
  const env = await startKubeControlPlane(api);
  running.push(env);
  return env;
}

async function kubectl(...args: string[]): Promise<string> {
  const r = await kube.kubectl(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

const secretKey = (key: string) =>
  kubectl(
    "get",
    "secret",
    "istio-ca-secret",
    "-n",
    "istio-system",
    "-o",
    `jsonpath={.data.${key.replace(".", "\\.")}}`,
  );

describe("the self-signed root in Secret istio-ca-secret", () => {
  it("is created by the first control plane in Istio's layout, and kept across restarts and replicas", async () => {
    const first = await start();
    const root = first.cp.ca.rootCertPem;
    expect(
      await kubectl("get", "secret", "istio-ca-secret", "-n", "istio-system", "-o", "jsonpath={.type}"),
    ).toBe("istio.io/ca-root");
    expect(Buffer.from(await secretKey("ca-cert.pem"), "base64").toString()).toBe(root);
    expect(Buffer.from(await secretKey("ca-key.pem"), "base64").toString()).toMatch(/BEGIN PRIVATE KEY/);

    // A second replica beside it, then a restart after both are gone: the same root each time.
    const second = await start();
    expect(second.cp.ca.rootCertPem).toBe(root);
    for (const env of running.splice(0)) await env.stop();
    const restarted = await start();
    expect(restarted.cp.ca.rootCertPem).toBe(root);
  });

  it("takes over a root istiod left behind (empty cert-chain.pem and root-cert.pem)", async () => {
    const istiod = await CertificateAuthority.generateSelfSigned({ trustDomain: "cluster.local" });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    api.objects.create(api.registry.byKind("v1", "Secret")!, "istio-system", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "istio-ca-secret", namespace: "istio-system" },
      type: "istio.io/ca-root",
      data: {
        "ca-cert.pem": b64(istiod.caCertPem),
        "ca-key.pem": b64(istiod.caKeyPem),
        "cert-chain.pem": "",
        "key.pem": "",
        "root-cert.pem": "",
      },
    } as never);
    const env = await start();
    expect(env.cp.ca.rootCertPem).toBe(istiod.caCertPem);
  });

  it("refuses to start on a Secret without its key, naming it, and leaves the Secret as it was", async () => {
    await kubectl(
      "create",
      "secret",
      "generic",
      "istio-ca-secret",
      "-n",
      "istio-system",
      "--from-literal=ca-cert.pem=not a certificate",
    );
    await expect(startKubeControlPlane(api)).rejects.toThrow(
      /Secret istio-system\/istio-ca-secret has no ca-key\.pem/,
    );
    expect(Buffer.from(await secretKey("ca-cert.pem"), "base64").toString()).toBe("not a certificate");
  });

  it("refuses to start on a Secret whose certificate does not parse, naming the Secret's key", async () => {
    await kubectl(
      "create",
      "secret",
      "generic",
      "istio-ca-secret",
      "-n",
      "istio-system",
      "--from-literal=ca-cert.pem=not a certificate",
      "--from-literal=ca-key.pem=not a key",
    );
    await expect(startKubeControlPlane(api)).rejects.toThrow(/Secret istio-system\/istio-ca-secret key ca-/);
  });
});
