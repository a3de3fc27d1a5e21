// The control plane's port in Kubernetes mode, as proxies in pods and the cluster see it: gRPC over
// TLS with a serving certificate for istiod's names from the mesh root (renewed before it expires),
// xDS streams served only to authenticated callers, plaintext refused, and the root published as
// ConfigMap istio-ca-root-cert in every namespace (created, repaired) — checked with real kubectl.

import { once } from "node:events";
import { Socket } from "node:net";
import * as tls from "node:tls";
import { ADDRESS_TYPE_URL, nodeToWire, protos } from "@ambient/core";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import {
  adsClient,
  type RunningKubeControlPlane,
  setPodStatus,
  startKubeControlPlane,
  tlsClient,
} from "../utils/kube-controlplane.js";

let api: TestApiServer;
let kube: KubeClients;
const running: RunningKubeControlPlane[] = [];
const stops: (() => void)[] = [];

beforeAll(async () => {
  api = await startTestApiServer({
    objects: [
      ...istioCrds(),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "demo", labels: { "istio.io/dataplane-mode": "ambient" } },
      },
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } },
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "ztunnel", namespace: "istio-system" } },
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "sleep", namespace: "demo" } },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "ztunnel-a", namespace: "istio-system" },
        spec: { nodeName: "node-a", serviceAccountName: "ztunnel", containers: [{ name: "z", image: "z" }] },
      },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "sleep", namespace: "demo" },
        spec: { nodeName: "node-a", serviceAccountName: "sleep", containers: [{ name: "s", image: "s" }] },
      },
    ] as never,
  });
  setPodStatus(api, "demo", "sleep", "10.0.1.10");
  kube = await kubeClients(api.kubeconfigPath);
}, 60_000);

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  for (const env of running.splice(0)) await env.stop();
});

afterAll(async () => {
  await kube?.cleanup();
  await api?.stop();
});

async function start(opts: Parameters<typeof startKubeControlPlane>[1] = {}) {
  const env = await startKubeControlPlane(api, opts);
  running.push(env);
  return env;
}

async function configMapRoot(clients: KubeClients, namespace: string): Promise<string> {
  const r = await clients.kubectl([
    "get",
    "configmap",
    "istio-ca-root-cert",
    "-n",
    namespace,
    "-o",
    "jsonpath={.data.root-cert\\.pem}",
  ]);
  return r.stdout;
}

/** The root as a pod mounts it, once `env` has published its own (each test's control plane has its own CA). */
async function rootCert(env: RunningKubeControlPlane): Promise<string> {
  const mine = env.cp.ca.rootCertsPem.join("");
  await eventually(async () => expect(await configMapRoot(kube, "istio-system")).toBe(mine), 10_000);
  return mine;
}

async function ztunnelToken(): Promise<string> {
  const r = await kube.kubectl([
    "create",
    "token",
    "ztunnel",
    "-n",
    "istio-system",
    "--audience",
    "istio-ca",
    "--bound-object-kind",
    "Pod",
    "--bound-object-name",
    "ztunnel-a",
  ]);
  return r.stdout.trim();
}

/** One Delta ADS stream opened by hand: its first response, or the status it ended with. */
async function openStream(
  env: RunningKubeControlPlane,
  root: string,
  bearer: string | undefined,
): Promise<{ resources: string[] } | ServiceError> {
  const client = tlsClient(env.cp, root);
  stops.push(() => client.close());
  const method = protos().deltaAggregatedResources;
  const md = new Metadata();
  if (bearer !== undefined) md.set("authorization", `Bearer ${bearer}`);
  const call = client.makeBidiStreamRequest(
    method.path,
    method.requestSerialize as (v: unknown) => Buffer,
    method.responseDeserialize as (b: Buffer) => { resources: unknown[] },
    md,
  );
  stops.push(() => call.cancel());
  call.write({
    node: nodeToWire({
      id: "ztunnel~10.0.0.1~ztunnel-a.istio-system~istio-system.svc.cluster.local",
      cluster: "Kubernetes",
      metadata: {},
    }),
    typeUrl: ADDRESS_TYPE_URL,
    resourceNamesSubscribe: [],
    resourceNamesUnsubscribe: [],
    initialResourceVersions: {},
    responseNonce: "",
  });
  return new Promise((resolve) => {
    call.once("data", (res: { resources: { name: string }[] }) =>
      resolve({ resources: res.resources.map((r) => r.name).sort() }),
    );
    call.once("error", (err: ServiceError) => resolve(err));
  });
}

function serverCertificate(port: number, root: string, servername: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, ca: root, servername, ALPNProtocols: ["h2"] },
      () => {
        resolve(socket.getPeerCertificate());
        socket.destroy();
      },
    );
    socket.once("error", reject);
  });
}

const portOf = (address: string | undefined) => Number(address!.split(":").pop());

describe("Kubernetes mode: the TLS port", () => {
  it("serves xDS to a stream with a valid token and refuses one without, or with a rejected one", async () => {
    const env = await start();
    const root = await rootCert(env);
    const none = (await openStream(env, root, undefined)) as ServiceError;
    expect(none.code).toBe(status.UNAUTHENTICATED);
    expect(none.details).toMatch(/no bearer token/);
    const garbage = (await openStream(env, root, "not-a-token")) as ServiceError;
    expect(garbage.code).toBe(status.UNAUTHENTICATED);
    expect(garbage.details).toMatch(/the Kubernetes API server did not authenticate the token/);
    expect(env.logs.filter((l) => String(l.msg).startsWith("xDS stream refused"))).toHaveLength(2);

    // The test API server, as a real one, has Service default/kubernetes.
    expect(await openStream(env, root, await ztunnelToken())).toEqual({
      resources: ["Kubernetes//Pod/demo/sleep", "default/kubernetes.default.svc.cluster.local"],
    });
    // The client library a proxy uses, too.
    const { client, held } = adsClient(env.cp, root, await ztunnelToken(), [ADDRESS_TYPE_URL]);
    stops.push(() => client.close());
    await eventually(() =>
      expect([...held.get(ADDRESS_TYPE_URL)!.keys()].sort()).toEqual([
        "Kubernetes//Pod/demo/sleep",
        "default/kubernetes.default.svc.cluster.local",
      ]),
    );
  });

  it("presents a certificate from the mesh root for istiod's names and the loopback IP, and no other name", async () => {
    const env = await start();
    const root = await rootCert(env);
    const port = portOf(env.cp.tlsAddress);
    const cert = await serverCertificate(port, root, "istiod.istio-system.svc");
    expect(cert.subjectaltname).toBe(
      "DNS:istiod.istio-system.svc, DNS:istiod.istio-system.svc.cluster.local, DNS:istiod.istio-system, DNS:istiod, IP Address:127.0.0.1",
    );
    await expect(serverCertificate(port, root, "istiod.elsewhere.svc")).rejects.toMatchObject({
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
  });

  it("renews its serving certificate before it expires; new connections get the new one", async () => {
    const env = await start({ servingCertTtlSeconds: 4 });
    const root = await rootCert(env);
    const port = portOf(env.cp.tlsAddress);
    const first = await serverCertificate(port, root, "istiod");
    await eventually(async () => {
      const now = await serverCertificate(port, root, "istiod");
      expect(now.serialNumber).not.toBe(first.serialNumber);
    }, 10_000);
    expect(env.logs.filter((l) => l.msg === "serving certificate issued").length).toBeGreaterThan(1);
  });

  it("refuses plaintext: an HTTP/1 request is answered 400, a gRPC preface closed, each logged once", async () => {
    const env = await start();
    const port = portOf(env.cp.tlsAddress);
    const http1 = new Socket();
    http1.connect(port, "127.0.0.1");
    http1.end("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    let answer = "";
    http1.on("data", (d) => {
      answer += d;
    });
    await once(http1, "close");
    expect(answer).toMatch(/^HTTP\/1.1 400 Bad Request\r\n[\s\S]*this port speaks gRPC over TLS/);

    const h2c = new Socket();
    h2c.connect(port, "127.0.0.1");
    h2c.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // Read, so that the server's FIN is seen and the socket closes.
    h2c.resume();
    await once(h2c, "close");
    await eventually(() =>
      expect(env.logs.filter((l) => l.code === "AMB_CP_NOT_TLS").map((l) => l.msg)).toEqual([
        expect.stringMatching(/an HTTP\/1 request/),
        expect.stringMatching(/not a TLS handshake: plaintext HTTP\/2/),
      ]),
    );
  });

  it("serves the plaintext port only when asked, with the same authentication", async () => {
    const without = await start();
    expect(without.cp.plaintextAddress).toBeUndefined();
    const env = await start({ plaintext: true });
    const { RawDeltaStream } = await import("@ambient/core/testing");
    const raw = new RawDeltaStream(env.cp.plaintextAddress!);
    stops.push(() => raw.close());
    raw.send({ typeUrl: ADDRESS_TYPE_URL });
    await eventually(() => expect(raw.ended).toBe(true));
    expect(env.logs.some((l) => String(l.msg).match(/xDS stream refused: no bearer token/))).toBe(true);
  });
});

describe("Kubernetes mode: the root certificate in every namespace", () => {
  it("is published in each namespace, created for a new one, repaired when edited or deleted", async () => {
    // A cluster of its own: no ConfigMap written by another test's control plane (another root).
    const cluster = await startTestApiServer({
      objects: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } },
      ] as never,
    });
    const kc = await kubeClients(cluster.kubeconfigPath);
    stops.push(() => {
      void kc.cleanup();
      void cluster.stop();
    });
    const env = await startKubeControlPlane(cluster);
    running.push(env);
    const root = env.cp.ca.rootCertsPem.join("");
    const published = async () => {
      const r = await kc.kubectl([
        "get",
        "configmaps",
        "-A",
        "--field-selector",
        "metadata.name=istio-ca-root-cert",
        "-o",
        'jsonpath={range .items[*]}{.metadata.namespace}{"\\n"}{end}',
      ]);
      return r.stdout.split("\n").filter(Boolean).sort();
    };
    // istiod's skip list: kube-public and kube-node-lease get none.
    await eventually(async () =>
      expect(await published()).toEqual(["default", "demo", "istio-system", "kube-system"]),
    );
    expect(await configMapRoot(kc, "demo")).toBe(root);

    expect(await kc.kubectl(["create", "namespace", "late"])).toMatchObject({ code: 0, stderr: "" });
    await eventually(async () => expect(await configMapRoot(kc, "late")).toBe(root));

    const patch = JSON.stringify({ data: { "root-cert.pem": "tampered" } });
    expect(
      (await kc.kubectl(["patch", "configmap", "istio-ca-root-cert", "-n", "demo", "-p", patch])).code,
    ).toBe(0);
    await eventually(async () => expect(await configMapRoot(kc, "demo")).toBe(root));
    expect((await kc.kubectl(["delete", "configmap", "istio-ca-root-cert", "-n", "late"])).code).toBe(0);
    await eventually(async () => expect(await configMapRoot(kc, "late")).toBe(root));
    expect(env.logs.filter((l) => l.msg === "repaired istio-ca-root-cert").map((l) => l.namespace)).toEqual([
      "demo",
    ]);
  });
});
