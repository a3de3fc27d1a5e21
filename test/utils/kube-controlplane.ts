// Builders for Kubernetes-mode control-plane tests: a control plane in Kubernetes mode against the
// test API server (TLS on 127.0.0.1:<free port>, serving certificate for istiod's names and the
// loopback IP), the kubelet's part for pod status, and gRPC clients that call it as proxies do:
// TLS verified against the root from ConfigMap istio-ca-root-cert, a bearer token, the CA and ADS.

import { join } from "node:path";
import { ControlPlane } from "@ambient/controlplane";
import {
  createLogger,
  createMemoryLogger,
  DeltaAdsClient,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  type Logger,
  protos,
  type XdsResourceHandler,
} from "@ambient/core";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { type TempDir, tempDir } from "./index.js";
import { type KubeClients, kubeClients, mustRun } from "./kube.js";

export interface RunningKubeControlPlane {
  cp: ControlPlane;
  state: TempDir;
  logs: Record<string, unknown>[];
  logger: Logger;
  stop(): Promise<void>;
}

export async function startKubeControlPlane(
  api: TestApiServer,
  opts: { servingCertTtlSeconds?: number; watchdogMs?: number; plaintext?: boolean } = {},
): Promise<RunningKubeControlPlane> {
  const state = await tempDir("ambient-kube-state-");
  const { logger, records } = createMemoryLogger("debug");
  const cp = await ControlPlane.start({
    kube: {
      kubeconfig: api.kubeconfigPath,
      tlsListen: { host: "127.0.0.1", port: 0 },
      servingIps: ["127.0.0.1"],
      ...(opts.servingCertTtlSeconds !== undefined
        ? { servingCertTtlSeconds: opts.servingCertTtlSeconds }
        : {}),
      reflector: { watchdogMs: opts.watchdogMs ?? 60_000, backoff: { initialMs: 50, maxMs: 500 } },
    },
    ...(opts.plaintext ? { listen: { host: "127.0.0.1", port: 0 } } : {}),
    stateDir: state.path,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger,
  });
  return {
    cp,
    state,
    logs: records,
    logger,
    stop: async () => {
      await cp.stop();
      await state.cleanup();
    },
  };
}

/** What the kubelet would report once a pod runs: its phase and IP, through the status subresource. */
export function setPodStatus(api: TestApiServer, namespace: string, name: string, podIP: string): void {
  const type = api.registry.byKind("v1", "Pod")!;
  api.objects.patch(
    type,
    namespace,
    name,
    "merge",
    { status: { phase: "Running", podIP, podIPs: [{ ip: podIP }] } },
    { subresource: "status" },
  );
}

/** A gRPC client for the TLS port, verifying the control plane's certificate for `servername`. */
export function tlsClient(cp: ControlPlane, rootPem: string, servername = "istiod.istio-system.svc"): Client {
  return new Client(cp.tlsAddress!, credentials.createSsl(Buffer.from(rootPem)), {
    "grpc.ssl_target_name_override": servername,
    "grpc.default_authority": servername,
  });
}

export function createCertificate(
  client: Client,
  req: Partial<IstioCertificateRequest>,
  token: string | undefined,
): Promise<IstioCertificateResponse> {
  const method = protos().createCertificate;
  const md = new Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize as (v: IstioCertificateRequest) => Buffer,
      method.responseDeserialize as (b: Buffer) => IstioCertificateResponse,
      { csr: "", validityDuration: 0, ...req } as IstioCertificateRequest,
      md,
      (err, res) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

/** The refusal of a call expected to fail. */
export async function refusalOf(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("the call succeeded");
}

/**
 * A Delta ADS client as a proxy in a pod runs it: TLS to the control plane verified against
 * `rootPem`, its token as a bearer, every resource of each type kept by name.
 */
export function adsClient(
  cp: ControlPlane,
  rootPem: string,
  token: string | undefined,
  typeUrls: readonly string[],
): { client: DeltaAdsClient; held: Map<string, Map<string, Uint8Array>> } {
  const held = new Map<string, Map<string, Uint8Array>>(typeUrls.map((t) => [t, new Map()]));
  const handlers: XdsResourceHandler<Uint8Array>[] = typeUrls.map((typeUrl) => ({
    typeUrl,
    decode: (_name, bytes) => bytes,
    apply: ({ upserts, removes }) => {
      const m = held.get(typeUrl)!;
      for (const [n, v] of upserts) m.set(n, v);
      for (const n of removes) m.delete(n);
    },
  }));
  const client = new DeltaAdsClient({
    address: cp.tlsAddress!,
    node: {
      id: "ztunnel~10.0.0.1~ztunnel-a.istio-system~istio-system.svc.cluster.local",
      cluster: "Kubernetes",
    },
    handlers: handlers as XdsResourceHandler<unknown>[],
    logger: createLogger({ level: "silent" }),
    credentials: credentials.createSsl(Buffer.from(rootPem)),
    channelOptions: { "grpc.ssl_target_name_override": "istiod.istio-system.svc" },
    ...(token !== undefined ? { metadata: { authorization: `Bearer ${token}` } } : {}),
    backoff: { initialMs: 50, maxMs: 500 },
  });
  client.start();
  return { client, held };
}

export interface ManifestsCluster {
  api: TestApiServer;
  kube: KubeClients;
  env: RunningKubeControlPlane;
  /** kubectl that must succeed; its stdout. */
  kubectl: (...args: string[]) => Promise<string>;
  stop(): Promise<void>;
}

/**
 * The test API server with Istio's CRDs and namespaces istio-system and demo, a control plane in
 * Kubernetes mode on it, and `manifests` applied with the real kubectl: what the status tests start from.
 */
export async function startManifestsCluster(manifests: string): Promise<ManifestsCluster> {
  const api = await startTestApiServer({
    objects: [
      ...istioCrds(),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } },
    ] as never,
  });
  const kube = await kubeClients(api.kubeconfigPath);
  const env = await startKubeControlPlane(api);
  const { k: kubectl } = mustRun(() => kube);
  const dir = await tempDir("ambient-manifests-");
  await dir.write("all.yaml", manifests);
  await kubectl("apply", "-f", join(dir.path, "all.yaml"));
  await dir.cleanup();
  return {
    api,
    kube,
    env,
    kubectl,
    stop: async () => {
      await env.stop();
      await kube.cleanup();
      await api.stop();
    },
  };
}
