// Local mode (`ambientctl up`): a waypoint Gateway gets the Pod and Service Istio's deployment
// controller would create, addressed by the allocator, published to ztunnels like any workload, and
// the CA signs the waypoint's identity for the token of the node it runs on.

import { readFile } from "node:fs/promises";
import { ControlPlane, LocalTokenAuthenticator } from "@ambient/controlplane";
import {
  ADDRESS_TYPE_URL,
  createMemoryLogger,
  createWorkloadCsr,
  type DeltaDiscoveryResponse,
  decodeAddress,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  nodeToWire,
  protos,
  SpiffeId,
  structFromJson,
  verifyWorkloadChain,
} from "@ambient/core";
import { RawDeltaStream } from "@ambient/core/testing";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { docs, namespace, pod, type TempDir, tempDir } from "../utils/index.js";

const ZTUNNEL = nodeToWire({ id: "ztunnel~127.10.1.1~node-a", cluster: "Kubernetes", metadata: {} });

const cluster = docs(
  namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
  "apiVersion: v1\nkind: Node\nmetadata: { name: node-b }\n",
  "apiVersion: v1\nkind: Node\nmetadata: { name: node-a }\n",
  pod({ name: "app", namespace: "demo", node: "node-b", ip: "127.10.2.10", labels: { app: "app" } }),
  // No clusterIP: local mode allocates one, as it does for the waypoint's own Service.
  "apiVersion: v1\nkind: Service\nmetadata: { name: app, namespace: demo }\nspec:\n  selector: { app: app }\n  ports: [{ port: 80 }]\n",
);

const waypoint = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`;

interface Env {
  cp: ControlPlane;
  config: TempDir;
  state: TempDir;
  logs: Record<string, unknown>[];
}

const ip = (bytes: Uint8Array | undefined) => (bytes ? [...bytes].join(".") : undefined);

describe("waypoints in local mode", () => {
  let env: Env | undefined;
  const closers: (() => void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await env?.cp.stop();
    await env?.config.cleanup();
    await env?.state.cleanup();
    env = undefined;
  });

  async function start(files: Record<string, string>): Promise<Env> {
    const config = await tempDir("ambient-wp-config-");
    const state = await tempDir("ambient-wp-state-");
    for (const [name, text] of Object.entries(files)) await config.write(name, text);
    const { logger, records } = createMemoryLogger("debug");
    const cp = await ControlPlane.start({
      configDir: config.path,
      listen: { host: "127.0.0.1", port: 0 },
      stateDir: state.path,
      trustDomain: "cluster.local",
      clusterId: "Kubernetes",
      rootNamespace: "istio-system",
      logger,
      allocateLocalAddresses: true,
    });
    env = { cp, config, state, logs: records };
    return env;
  }

  function stream(address: string): RawDeltaStream {
    const s = new RawDeltaStream(address);
    closers.push(() => s.close());
    return s;
  }

  it("publishes the waypoint as an addressed workload behind its own VIP, and the app's Service uses it", async () => {
    const { cp } = await start({ "00-cluster.yaml": cluster, "10-waypoint.yaml": waypoint });
    const s = stream(cp.address);
    s.send({ node: ZTUNNEL, typeUrl: ADDRESS_TYPE_URL });
    const first: DeltaDiscoveryResponse = await s.next();
    const byName = new Map(first.resources.map((r) => [r.name, decodeAddress(r.resource!.value, r.name)]));

    const pod = byName.get("Kubernetes//Pod/demo/waypoint-waypoint")?.workload;
    expect(pod).toMatchObject({
      tunnelProtocol: "NONE",
      serviceAccount: "waypoint",
      node: "node-a",
      status: "HEALTHY",
    });
    // node-a is the first node by name: 127.10.1.x.
    expect(ip(pod!.addresses[0])).toBe("127.10.1.10");
    expect(pod!.waypoint).toBeUndefined();

    const wpService = byName.get("demo/waypoint.demo.svc.cluster.local")?.service;
    const appService = byName.get("demo/app.demo.svc.cluster.local")?.service;
    expect(wpService?.ports.map((p) => p.servicePort)).toEqual([15008, 15021]);
    expect(wpService?.waypoint).toBeUndefined();
    const vips = [ip(wpService?.addresses[0]?.address), ip(appService?.addresses[0]?.address)];
    expect(vips.sort()).toEqual(["127.10.100.1", "127.10.100.2"]);
    expect(appService?.waypoint).toEqual({
      hostname: { namespace: "demo", hostname: "waypoint.demo.svc.cluster.local" },
      hboneMtlsPort: 15008,
    });
    s.send({ typeUrl: ADDRESS_TYPE_URL, responseNonce: first.nonce });

    // Deleting the Gateway takes its pod and Service away, and the app's Service keeps pointing at
    // the (now missing) waypoint: fail closed, with a warning.
    await env!.config.remove("10-waypoint.yaml");
    await cp.reload();
    const removal = await s.next();
    expect(removal.removedResources.sort()).toEqual([
      "Kubernetes//Pod/demo/waypoint-waypoint",
      "demo/waypoint.demo.svc.cluster.local",
    ]);
    expect(cp.snapshot.services.find((x) => x.name === "app")?.waypoint?.hostname?.hostname).toBe(
      "waypoint.demo.svc.cluster.local",
    );
    expect(env!.logs.some((l) => /waypoint demo\/waypoint.*does not exist/.test(String(l["msg"])))).toBe(
      true,
    );
  });

  it("the CA signs the waypoint's identity for the token of the node its pod runs on", async () => {
    const { cp, state } = await start({
      "00-cluster.yaml": cluster,
      "10-waypoint.yaml": waypoint.replace(
        "metadata: { name: waypoint, namespace: demo }",
        "metadata:\n  name: waypoint\n  namespace: demo\n  annotations: { ambient.io/node: node-b }",
      ),
    });
    const identity = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/waypoint");
    const token = (await readFile(LocalTokenAuthenticator.tokenPath(state.path, "node-b"), "utf8")).trim();
    const client = new Client(cp.address, credentials.createInsecure());
    closers.push(() => client.close());
    const { csrPem } = await createWorkloadCsr(identity);
    const method = protos().createCertificate;
    const md = new Metadata();
    md.set("authorization", `Bearer ${token}`);
    const res = await new Promise<IstioCertificateResponse>((resolve, reject) =>
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize as (v: IstioCertificateRequest) => Buffer,
        method.responseDeserialize as (b: Buffer) => IstioCertificateResponse,
        {
          csr: csrPem,
          validityDuration: 3600,
          metadata: structFromJson({ ImpersonatedIdentity: identity.toString() }),
        } as IstioCertificateRequest,
        md,
        (err, r) => (err ? reject(err) : resolve(r!)),
      ),
    );
    const verified = verifyWorkloadChain(res.certChain, cp.ca.rootCertsPem, { trustDomain: "cluster.local" });
    expect(verified.identity.toString()).toBe(identity.toString());
  });

  it("a real Pod with the waypoint pod's name wins, with a warning", async () => {
    const real = pod({
      name: "waypoint-waypoint",
      namespace: "demo",
      node: "node-b",
      ip: "127.10.2.77",
      sa: "custom",
    });
    const { cp } = await start({ "00-cluster.yaml": cluster, "10-waypoint.yaml": docs(waypoint, real) });
    const w = cp.snapshot.workloads.find((x) => x.name === "waypoint-waypoint")!;
    expect(w.serviceAccount).toBe("custom");
    expect(ip(w.addresses[0])).toBe("127.10.2.77");
    const warning = env!.logs.find((l) => l["object"] === "core/Pod/demo/waypoint-waypoint");
    expect(warning?.["msg"]).toMatch(/replaces the Pod Ambient would create for waypoint demo\/waypoint/);
  });
});
