// The CA in Kubernetes mode, called as proxies in pods call it: over TLS on the control plane's
// port (verified with the root from ConfigMap istio-ca-root-cert), with service-account tokens that
// the real `kubectl create token` requests from the test API server, checked by TokenReview and
// authorized by Istio's node rules over the pods the control plane reads from the API.

import { webcrypto } from "node:crypto";
import { createWorkloadCsr, SpiffeId, structFromJson, verifyWorkloadChain } from "@ambient/core";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { type Client, status } from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { eventually } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import {
  createCertificate,
  type RunningKubeControlPlane,
  refusalOf,
  startKubeControlPlane,
  tlsClient,
} from "../utils/kube-controlplane.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const id = (ns: string, sa: string) => SpiffeId.parse(`spiffe://cluster.local/ns/${ns}/sa/${sa}`);
const SLEEP = id("demo", "sleep");
const WAYPOINT = id("demo", "waypoint");
const HTTPBIN = id("demo", "httpbin");

const sa = (namespace: string, name: string) => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: { name, namespace },
});
const pod = (namespace: string, name: string, serviceAccountName: string, nodeName: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels: { app: name } },
  spec: { nodeName, serviceAccountName, containers: [{ name: "c", image: "c" }] },
});

let api: TestApiServer;
let env: RunningKubeControlPlane;
let kube: KubeClients;
let client: Client;

beforeAll(async () => {
  // Quick bookmarks and watchdog: a stalled watch (one test) is noticed within seconds.
  api = await startTestApiServer({
    bookmarkIntervalMs: 250,
    objects: [
      ...istioCrds(),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "demo", labels: { "istio.io/dataplane-mode": "ambient" } },
      },
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } },
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-b" } },
      sa("istio-system", "ztunnel"),
      sa("demo", "sleep"),
      sa("demo", "httpbin"),
      sa("demo", "waypoint"),
      pod("istio-system", "ztunnel-a", "ztunnel", "node-a"),
      pod("istio-system", "ztunnel-b", "ztunnel", "node-b"),
      pod("demo", "sleep", "sleep", "node-a"),
      pod("demo", "waypoint", "waypoint", "node-a"),
      pod("demo", "httpbin", "httpbin", "node-b"),
    ] as never,
  });
  env = await startKubeControlPlane(api, { watchdogMs: 1500 });
  kube = await kubeClients(api.kubeconfigPath);
  // The root as a pod gets it: the ConfigMap the control plane publishes, read with kubectl.
  let root = "";
  await eventually(async () => {
    const r = await kube.kubectl([
      "get",
      "configmap",
      "istio-ca-root-cert",
      "-n",
      "istio-system",
      "-o",
      "jsonpath={.data.root-cert\\.pem}",
    ]);
    expect(r.stdout).toContain("BEGIN CERTIFICATE");
    root = r.stdout;
  }, 10_000);
  client = tlsClient(env.cp, root);
}, 60_000);

afterAll(async () => {
  client?.close();
  await kube?.cleanup();
  await env?.stop();
  await api?.stop();
});

afterEach(() => {
  vi.useRealTimers();
});

/** `kubectl create token`: pod-bound when `pod` is given, audience istio-ca unless told otherwise. */
async function token(
  namespace: string,
  account: string,
  opts: { pod?: string; audience?: string; duration?: string } = {},
): Promise<string> {
  const args = ["create", "token", account, "-n", namespace, "--audience", opts.audience ?? "istio-ca"];
  if (opts.pod) args.push("--bound-object-kind", "Pod", "--bound-object-name", opts.pod);
  if (opts.duration) args.push("--duration", opts.duration);
  const r = await kube.kubectl(args);
  expect(r.stderr).toBe("");
  return r.stdout.trim();
}

async function csrFor(identity: SpiffeId): Promise<string> {
  return (await createWorkloadCsr(identity)).csrPem;
}

const impersonating = (identity: SpiffeId) => structFromJson({ ImpersonatedIdentity: identity.toString() });

async function signedFor(identity: SpiffeId, bearer: string, impersonate: boolean): Promise<SpiffeId> {
  const res = await createCertificate(
    client,
    { csr: await csrFor(identity), ...(impersonate ? { metadata: impersonating(identity) } : {}) },
    bearer,
  );
  return verifyWorkloadChain(res.certChain, env.cp.ca.rootCertsPem, { trustDomain: "cluster.local" })
    .identity;
}

describe("CA in Kubernetes mode", () => {
  it("gives node-a's ztunnel (pod-bound token) the identities of pods on node-a", async () => {
    const bearer = await token("istio-system", "ztunnel", { pod: "ztunnel-a" });
    expect((await signedFor(SLEEP, bearer, true)).equals(SLEEP)).toBe(true);
    expect((await signedFor(WAYPOINT, bearer, true)).equals(WAYPOINT)).toBe(true);
    expect(
      env.logs.some((l) => l.msg === "certificate signed" && String(l.caller).includes("ztunnel-a")),
    ).toBe(true);
  });

  it("refuses node-a's ztunnel an identity that only runs on node-b, naming the node", async () => {
    const bearer = await token("istio-system", "ztunnel", { pod: "ztunnel-a" });
    const err = await refusalOf(signedFor(HTTPBIN, bearer, true));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /no pod with identity spiffe:\/\/cluster.local\/ns\/demo\/sa\/httpbin runs on node "node-a" \(the node of istio-system\/ztunnel-a\)/,
    );
    // node-b's ztunnel gets it.
    const b = await token("istio-system", "ztunnel", { pod: "ztunnel-b" });
    expect((await signedFor(HTTPBIN, b, true)).equals(HTTPBIN)).toBe(true);
  });

  it("refuses a node proxy's token that is not bound to a pod", async () => {
    const err = await refusalOf(signedFor(SLEEP, await token("istio-system", "ztunnel"), true));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toMatch(/not bound to a pod/);
  });

  it("refuses a token for another audience", async () => {
    const bearer = await token("istio-system", "ztunnel", {
      pod: "ztunnel-a",
      audience: "https://example.com",
    });
    const err = await refusalOf(signedFor(SLEEP, bearer, true));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toMatch(/did not authenticate the token: .*audiences do not match/);
  });

  it("refuses an expired token", async () => {
    const bearer = await token("istio-system", "ztunnel", { pod: "ztunnel-a", duration: "10m" });
    expect((await signedFor(SLEEP, bearer, true)).equals(SLEEP)).toBe(true);
    // The API server's clock (in this process) moves past the token's expiry.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 11 * 60_000);
    const err = await refusalOf(signedFor(SLEEP, bearer, true));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toMatch(/did not authenticate the token: .*"exp" claim/);
  });

  it("refuses ImpersonatedIdentity from a service account that is not a trusted node account", async () => {
    const bearer = await token("demo", "sleep", { pod: "sleep" });
    const err = await refusalOf(signedFor(WAYPOINT, bearer, true));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /demo\/sleep is not a trusted node account \(CA_TRUSTED_NODE_ACCOUNTS: istio-system\/ztunnel\)/,
    );
  });

  it("gives a waypoint its own identity without impersonation, and nothing else", async () => {
    const bearer = await token("demo", "waypoint", { pod: "waypoint" });
    expect((await signedFor(WAYPOINT, bearer, false)).equals(WAYPOINT)).toBe(true);
    const err = await refusalOf(signedFor(SLEEP, bearer, false));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /system:serviceaccount:demo:waypoint \(pod demo\/waypoint\) may only obtain its own identity spiffe:\/\/cluster.local\/ns\/demo\/sa\/waypoint/,
    );
  });

  it("refuses a token whose pod was deleted", async () => {
    const create = await kube.kubectl([
      "run",
      "ztunnel-gone",
      "-n",
      "istio-system",
      "--image=z",
      "--overrides",
      JSON.stringify({ spec: { nodeName: "node-a", serviceAccountName: "ztunnel" } }),
    ]);
    expect(create.code).toBe(0);
    const bearer = await token("istio-system", "ztunnel", { pod: "ztunnel-gone" });
    await eventually(async () => expect((await signedFor(SLEEP, bearer, true)).equals(SLEEP)).toBe(true));
    expect(
      (
        await kube.kubectl([
          "delete",
          "pod",
          "ztunnel-gone",
          "-n",
          "istio-system",
          "--grace-period=0",
          "--force",
        ])
      ).code,
    ).toBe(0);
    const err = await refusalOf(signedFor(SLEEP, bearer, true));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toMatch(/pod istio-system\/ztunnel-gone has been deleted/);
  });

  it("refuses a node proxy whose pod the control plane has not seen yet, then serves it", async () => {
    api.faults.stallWatches();
    try {
      const podType = api.registry.byKind("v1", "Pod")!;
      api.objects.create(
        podType,
        "istio-system",
        pod("istio-system", "ztunnel-new", "ztunnel", "node-a") as never,
      );
      const bearer = await token("istio-system", "ztunnel", { pod: "ztunnel-new" });
      const err = await refusalOf(signedFor(SLEEP, bearer, true));
      expect(err.code).toBe(status.UNAUTHENTICATED);
      expect(err.details).toMatch(
        /the caller's pod istio-system\/ztunnel-new is not known to the control plane/,
      );
      api.faults.resumeWatches();
      await eventually(async () => expect((await signedFor(SLEEP, bearer, true)).equals(SLEEP)).toBe(true));
    } finally {
      api.faults.resumeWatches();
    }
  });

  it("refuses a call without a token, saying what to send", async () => {
    const err = await refusalOf(createCertificate(client, { csr: await csrFor(SLEEP) }, undefined));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toMatch(
      /no bearer token: send `authorization: Bearer <service-account token for audience istio-ca>`/,
    );
  });
});
