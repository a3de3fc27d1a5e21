// The control plane's monitoring port (istiod's 15014): /ready answers 503 while the sources load
// and 200 once xDS and the CA serve, 503 again while stopping; /metrics counts xDS streams and
// certificate requests under Istio's names (pilot_xds, citadel_server_*), refusals by code.

import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { ControlPlane, LocalTokenAuthenticator } from "@ambient/controlplane";
import {
  ADDRESS_TYPE_URL,
  createMemoryLogger,
  createWorkloadCsr,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  nodeToWire,
  protos,
  SpiffeId,
  structFromJson,
} from "@ambient/core";
import { RawDeltaStream } from "@ambient/core/testing";
import type { KubeObject, ObjectSource } from "@ambient/kube";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { docs, eventually, namespace, node, pod, type TempDir, tempDir } from "../utils/index.js";

const SLEEP = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/sleep");
const MESH = docs(
  namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
  node("node-1", "127.10.1.1"),
  pod({ name: "sleep", namespace: "demo", node: "node-1", ip: "127.10.1.10", sa: "sleep" }),
);

const NODE = nodeToWire({ id: "ztunnel~127.10.1.1~node-1", cluster: "Kubernetes", metadata: {} });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A source whose first load waits for `release()`: the window a readiness probe must see as 503. */
function gatedSource(objects: KubeObject[]): ObjectSource & { release(): void } {
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  return {
    release: () => release(),
    start: () => gate,
    stop: async () => {},
    refresh: async () => false,
    objects: () => objects,
    problems: () => [],
    onChange: () => () => {},
  };
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

function metric(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function start(state: TempDir, source: ObjectSource, port: number) {
  const { logger } = createMemoryLogger("debug");
  return ControlPlane.start({
    source,
    listen: { host: "127.0.0.1", port: 0 },
    monitoring: { host: "127.0.0.1", port },
    stateDir: state.path,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger,
  });
}

function createCertificate(
  client: Client,
  token: string | undefined,
  csr: string,
): Promise<IstioCertificateResponse> {
  const method = protos().createCertificate;
  const md = new Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  const req = {
    csr,
    validityDuration: 3600,
    metadata: structFromJson({ ImpersonatedIdentity: SLEEP.toString() }),
  } as IstioCertificateRequest;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize as (v: IstioCertificateRequest) => Buffer,
      method.responseDeserialize as (b: Buffer) => IstioCertificateResponse,
      req,
      md,
      (err, res) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

describe("the control plane's monitoring port", () => {
  it("/ready is 503 while loading, 200 once serving, 503 while stopping; other methods and paths are refused", async () => {
    const state = await tempDir("ambient-monitoring-");
    cleanups.push(() => state.cleanup());
    const port = await freePort();
    const source = gatedSource(parseAllDocuments(MESH).map((d) => d.toJS() as KubeObject));
    const starting = start(state, source, port);
    await eventually(async () =>
      expect(await get(port, "/ready")).toEqual({ status: 503, body: "not ready: loading\n" }),
    );
    source.release();
    const cp = await starting;
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await cp.stop();
    });
    expect(cp.monitoringAddress).toBe(`127.0.0.1:${port}`);
    expect(await get(port, "/ready")).toEqual({ status: 200, body: "ready\n" });
    expect((await get(port, "/nope")).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/ready`, { method: "POST" })).status).toBe(405);
    const stopping = cp.stop();
    stopped = true;
    // Either still answering "stopping" or already closed: never "ready" again.
    const after = await get(port, "/ready").catch(() => ({ status: 0, body: "closed" }));
    expect(after.status).not.toBe(200);
    await stopping;
    await expect(fetch(`http://127.0.0.1:${port}/ready`)).rejects.toThrow();
  });

  it("/metrics counts xDS streams and certificate requests: signed, refused (by code), authentication failures", async () => {
    const state = await tempDir("ambient-monitoring-");
    cleanups.push(() => state.cleanup());
    const port = await freePort();
    const source = gatedSource(parseAllDocuments(MESH).map((d) => d.toJS() as KubeObject));
    source.release();
    const cp = await start(state, source, port);
    cleanups.push(() => cp.stop());
    const scrape = async () => (await get(port, "/metrics")).body;
    expect(metric(await scrape(), "pilot_xds")).toBe(0);
    expect(metric(await scrape(), "ambient_controlplane_publishes_total")).toBeGreaterThanOrEqual(1);
    expect(await scrape()).toMatch(/^process_resident_memory_bytes /m);

    const client = new Client(cp.address, credentials.createInsecure());
    cleanups.push(async () => client.close());
    const { csrPem } = await createWorkloadCsr(SLEEP);
    await expect(createCertificate(client, undefined, csrPem)).rejects.toThrow();
    const token = (await readFile(LocalTokenAuthenticator.tokenPath(state.path, "node-1"), "utf8")).trim();
    await createCertificate(client, token, csrPem);
    const text = await scrape();
    expect(metric(text, "citadel_server_csr_count")).toBe(2);
    expect(metric(text, "citadel_server_success_cert_issuance_count")).toBe(1);
    expect(metric(text, "ambient_ca_refusals_total", 'code="AMB_UNAUTHENTICATED"')).toBe(1);
    expect(metric(text, "citadel_server_authentication_failure_count")).toBe(1);

    // An xDS stream open is one pilot_xds; it goes back to 0 when the stream ends.
    const stream = new RawDeltaStream(cp.address);
    stream.send({ node: NODE, typeUrl: ADDRESS_TYPE_URL });
    await eventually(async () => expect(metric(await scrape(), "pilot_xds")).toBe(1));
    stream.close();
    await eventually(async () => expect(metric(await scrape(), "pilot_xds")).toBe(0));
  });
});
