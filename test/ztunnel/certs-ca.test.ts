// ztunnel's CertificateManager against the control plane's real CA, authenticated with the node
// tokens the control plane writes: certificates for pods on the node, refusals for pods elsewhere,
// rotation at half life, and riding out a CA restart on the same state folder and port.

import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { ControlPlane, LocalTokenAuthenticator } from "@ambient/controlplane";
import {
  type AmbientError,
  createLogger,
  describeCertificate,
  SpiffeId,
  verifyWorkloadChain,
} from "@ambient/core";
import { CertificateManager, type CertificateManagerOptions } from "@ambient/dataplane";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  startControlPlane,
  type TempDir,
  tempDir,
} from "../utils/index.js";

const logger = createLogger({ level: "silent" });
const SLEEP = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/sleep");
const HTTPBIN = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/httpbin");

const cluster = docs(
  namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
  node("node-1", "127.10.1.1"),
  node("node-2", "127.10.2.1"),
);
const sleepPod = pod({ name: "sleep", namespace: "demo", node: "node-1", ip: "127.10.1.10", sa: "sleep" });
const httpbinOn = (nodeName: string) =>
  pod({ name: "httpbin", namespace: "demo", node: nodeName, ip: "127.10.2.10", sa: "httpbin" });
const MESH = { "00-cluster.yaml": cluster, "10-pods.yaml": docs(sleepPod, httpbinOn("node-2")) };

let cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function managerFor(stateDir: string, caAddress: string, opts: Partial<CertificateManagerOptions> = {}) {
  const m = new CertificateManager({
    caAddress,
    token: async () => (await readFile(LocalTokenAuthenticator.tokenPath(stateDir, "node-1"), "utf8")).trim(),
    trustDomain: "cluster.local",
    logger,
    backoff: { initialMs: 50, maxMs: 400 },
    ...opts,
  });
  cleanups.push(() => m.close());
  return m;
}

async function controlPlane(files = MESH): Promise<RunningControlPlane> {
  const env = await startControlPlane(files);
  cleanups.push(() => env.stop());
  return env;
}

describe("CertificateManager with the control plane's CA", () => {
  it("gets a certificate for a pod on its node, with the pod's SPIFFE ID as its only SAN", async () => {
    const env = await controlPlane();
    const m = managerFor(env.state.path, env.cp.address);
    m.setIdentities([SLEEP]);
    const cert = await m.whenReady(SLEEP);
    const leaf = describeCertificate(cert.certChainPem[0]!);
    expect(leaf.identity).toBe(SLEEP.toString());
    expect(leaf.subject).toBe("(empty)");
    expect(verifyWorkloadChain(cert.certChainPem, env.cp.ca.rootCertsPem).identity.equals(SLEEP)).toBe(true);
    expect(m.rootsPem()).toEqual([env.cp.ca.rootCertPem]);
    // Istio's default lifetime: a day.
    expect(Math.round((cert.notAfter.getTime() - Date.now()) / 3600_000)).toBe(24);
  });

  it("ends a refused identity in `failed` with the CA's message, retries, and succeeds once allowed", async () => {
    const env = await controlPlane();
    const m = managerFor(env.state.path, env.cp.address);
    const failures: AmbientError[] = [];
    m.on("fetchFailed", (_id, err) => failures.push(err));
    m.setIdentities([SLEEP, HTTPBIN]);
    await m.whenReady(SLEEP);
    await eventually(() => expect(failures.length).toBeGreaterThanOrEqual(2));
    const status = m.snapshot().find((s) => s.identity === HTTPBIN.toString());
    expect(status?.state).toBe("failed");
    expect(status?.lastError).toMatch(
      /PERMISSION_DENIED: node "node-1" runs no pod with identity spiffe:\/\/cluster.local\/ns\/demo\/sa\/httpbin/,
    );
    expect(m.allReady).toBe(false);
    expect(m.ready([SLEEP])).toBe(true);

    // The pod is rescheduled onto node-1: a later retry is signed.
    await env.config.write("10-pods.yaml", docs(sleepPod, httpbinOn("node-1")));
    const cert = await m.whenReady(HTTPBIN);
    expect(describeCertificate(cert.certChainPem[0]!).identity).toBe(HTTPBIN.toString());
    expect(m.allReady).toBe(true);
  });

  it("rotates at half life", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"], shouldAdvanceTime: true });
    const env = await controlPlane();
    const m = managerFor(env.state.path, env.cp.address, { ttlSeconds: 120 });
    m.setIdentities([SLEEP]);
    const first = await m.whenReady(SLEEP);
    const refreshAt = Date.parse(m.snapshot()[0]!.nextRefresh!);
    expect(refreshAt).toBe(
      first.notBefore.getTime() + (first.notAfter.getTime() - first.notBefore.getTime()) / 2,
    );

    const rotated = once(m, "rotated");
    await vi.advanceTimersByTimeAsync(refreshAt - Date.now() + 10);
    const [, second] = await rotated;
    expect(second.serial).not.toBe(first.serial);
    expect(m.get(SLEEP)).toBe(second);
  });

  it("keeps the valid certificate while the CA is down and fetches once it is back", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"], shouldAdvanceTime: true });
    const config = await tempDir("ambient-config-");
    const state = await tempDir("ambient-state-");
    cleanups.push(
      () => config.cleanup(),
      () => state.cleanup(),
    );
    for (const [name, text] of Object.entries(MESH)) await config.write(name, text);
    let cp = await startCa(config, state, 0);
    const port = Number(cp.address.split(":").pop());
    cleanups.push(() => cp.stop());

    const m = managerFor(state.path, cp.address, { ttlSeconds: 120 });
    m.setIdentities([SLEEP]);
    const first = await m.whenReady(SLEEP);
    const refreshAt = Date.parse(m.snapshot()[0]!.nextRefresh!);

    await cp.stop();
    const failed = once(m, "fetchFailed");
    await vi.advanceTimersByTimeAsync(refreshAt - Date.now() + 10);
    await failed;
    expect(m.get(SLEEP)).toBe(first);
    expect(m.snapshot()[0]).toMatchObject({ state: "available", serial: first.serial });
    expect(m.snapshot()[0]?.lastError).toMatch(/UNAVAILABLE/);

    // The same state folder (root and node tokens) on the same port.
    const rotated = once(m, "rotated");
    cp = await startCa(config, state, port);
    const [, second] = await rotated;
    expect(second.serial).not.toBe(first.serial);
    expect(second.certChainPem.at(-1)).toBe(first.certChainPem.at(-1));
    expect(m.snapshot()[0]).not.toHaveProperty("lastError");
  });
});

function startCa(config: TempDir, state: TempDir, port: number): Promise<ControlPlane> {
  return ControlPlane.start({
    configDir: config.path,
    listen: { host: "127.0.0.1", port },
    stateDir: state.path,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger,
    watch: false,
  });
}
