// CertificateManager against a scripted CA on loopback: each test decides what the CA answers
// (a signed chain, a refusal, a chain that must not be used), so every path is reached directly.

import { once } from "node:events";
import {
  type AmbientError,
  type CertificateAuthority,
  createLogger,
  findCode,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  protos,
  SpiffeId,
} from "@ambient/core";
import { createTestRoot, type TestCa } from "@ambient/core/testing";
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { CertificateErrorCode } from "./ca-client.js";
import { CertificateManager, type CertificateManagerOptions } from "./certificate-manager.js";

const logger = createLogger({ level: "silent" });
const SLEEP = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/sleep");
const ECHO = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/echo");

interface Seen {
  token: string | undefined;
  impersonated: string | undefined;
  validity: number;
}
type Answer = (req: IstioCertificateRequest) => Promise<string[] | { code: status; details: string }>;

let root: TestCa;
let authority: CertificateAuthority;

beforeAll(async () => {
  root = await createTestRoot();
  authority = await root.toAuthority();
});

let cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const sign = async (req: IstioCertificateRequest): Promise<string[]> =>
  (await authority.sign(req.csr, { ttlSeconds: req.validityDuration })).certChainPem;

/** A CA whose answer is `answers[i]` for the i-th request (the last one repeats). */
async function fakeCa(...answers: Answer[]) {
  const seen: Seen[] = [];
  const server = new Server();
  server.addService(protos().caService, {
    CreateCertificate: (
      call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
      callback: sendUnaryData<IstioCertificateResponse>,
    ) => {
      const req = call.request;
      seen.push({
        token: call.metadata.get("authorization")[0]?.toString(),
        impersonated: req.metadata?.fields?.["ImpersonatedIdentity"]?.stringValue,
        validity: Number(req.validityDuration),
      });
      const answer = answers[Math.min(seen.length, answers.length) - 1]!;
      answer(req).then(
        (r) => (Array.isArray(r) ? callback(null, { certChain: r }) : callback({ ...r, message: r.details })),
        (err: Error) => callback({ code: status.INTERNAL, details: err.message }),
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  cleanups.push(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, seen };
}

function manager(caAddress: string, opts: Partial<CertificateManagerOptions> = {}) {
  const m = new CertificateManager({
    caAddress,
    token: () => "node-token",
    trustDomain: "cluster.local",
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
    ...opts,
  });
  cleanups.push(() => m.close());
  return m;
}

describe("CertificateManager", () => {
  it("fetches a verified certificate with the node token and ImpersonatedIdentity", async () => {
    const ca = await fakeCa(sign);
    const m = manager(ca.address, { ttlSeconds: 3600 });
    const rotated = once(m, "rotated");
    m.setIdentities([SLEEP]);
    const cert = await m.whenReady(SLEEP);
    expect(ca.seen).toEqual([{ token: "Bearer node-token", impersonated: SLEEP.toString(), validity: 3600 }]);
    expect(cert.identity.equals(SLEEP)).toBe(true);
    expect(cert.certChainPem.at(-1)).toBe(root.rootCertPem);
    expect(cert.privateKeyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(m.get(SLEEP)).toBe(cert);
    expect(m.get(SLEEP.toString())).toBe(cert);
    expect((await rotated)[1]).toBe(cert);
    expect(m.rootsPem()).toEqual([root.rootCertPem]);
    expect(m.ready([SLEEP])).toBe(true);
    expect(m.allReady).toBe(true);
    const [status] = m.snapshot();
    const half = cert.notBefore.getTime() + (cert.notAfter.getTime() - cert.notBefore.getTime()) / 2;
    expect(status).toEqual({
      identity: SLEEP.toString(),
      state: "available",
      serial: cert.serial,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      nextRefresh: new Date(half).toISOString(),
      // Each certificate of the chain in use, leaf first, root last, with its own serial.
      chain: [
        expect.objectContaining({ type: "Leaf", serial: cert.serial, notAfter: cert.notAfter.toISOString() }),
        expect.objectContaining({ type: "Root", subject: "O=cluster.local" }),
      ],
    });
    expect(status!.chain![1]!.serial).not.toBe(cert.serial);
  });

  it("treats a chain it must not use as an error, and retries until a good one", async () => {
    const wrongIdentity: Answer = async () => (await root.issueLeaf({ identity: ECHO })).certChainPem;
    const otherKey: Answer = async () => (await root.issueLeaf({ identity: SLEEP })).certChainPem;
    const leafOnly: Answer = async (req) => (await sign(req)).slice(0, 1);
    const ca = await fakeCa(wrongIdentity, otherKey, leafOnly, sign);
    const m = manager(ca.address);
    const errors: AmbientError[] = [];
    m.on("fetchFailed", (_id, err) => errors.push(err));
    m.setIdentities([SLEEP]);
    await m.whenReady(SLEEP);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/unusable certificate for .*sleep: the leaf is for .*\/sa\/echo/),
      expect.stringMatching(/the leaf certifies another key than the one in our CSR/),
      expect.stringMatching(/the chain holds only the leaf/),
    ]);
    expect(m.snapshot()[0]).not.toHaveProperty("lastError");
  });

  it("verifies against configured roots when given, refusing another CA's chain", async () => {
    const other = await createTestRoot();
    const ca = await fakeCa(sign);
    const m = manager(ca.address, { rootsPem: [other.rootCertPem] });
    const failed = once(m, "fetchFailed");
    m.setIdentities([SLEEP]);
    const [, err] = (await failed) as [SpiffeId, AmbientError];
    expect(findCode(err)).toBe("AMB_CERT_WRONG_ISSUER");
    expect(m.snapshot()[0]?.state).toBe("failed");
  });

  it("reports a refusal as failed with the CA's message, and retries with growing delays", async () => {
    const ca = await fakeCa(async () => ({
      code: status.PERMISSION_DENIED,
      details: "no pod with that identity",
    }));
    const m = manager(ca.address);
    const delays: number[] = [];
    m.on("fetchFailed", (_id, err, retryInMs) => {
      expect(findCode(err)).toBe("AMB_CSR_FORBIDDEN");
      delays.push(retryInMs);
    });
    m.setIdentities([SLEEP]);
    await vi.waitFor(() => expect(delays.length).toBeGreaterThanOrEqual(3));
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
    expect(m.get(SLEEP)).toBeUndefined();
    expect(m.allReady).toBe(false);
    expect(m.snapshot()[0]).toMatchObject({
      state: "failed",
      lastError: `CA refused ${SLEEP}: PERMISSION_DENIED: no pod with that identity`,
    });
    expect(m.snapshot()[0]?.nextRefresh).toBeDefined();
  });

  it("rotates at half life, keeps the valid certificate while the CA fails, and recovers", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"], shouldAdvanceTime: true });
    let down = false;
    const ca = await fakeCa(async (req) =>
      down ? { code: status.UNAVAILABLE, details: "CA is down" } : sign(req),
    );
    const m = manager(ca.address, { ttlSeconds: 600 });
    m.setIdentities([SLEEP]);
    const first = await m.whenReady(SLEEP);
    const refreshAt = Date.parse(m.snapshot()[0]!.nextRefresh!);
    expect(refreshAt).toBe(
      first.notBefore.getTime() + (first.notAfter.getTime() - first.notBefore.getTime()) / 2,
    );

    down = true;
    const failed = once(m, "fetchFailed");
    await vi.advanceTimersByTimeAsync(refreshAt - Date.now() + 10);
    await failed;
    expect(m.get(SLEEP)).toBe(first);
    expect(m.snapshot()[0]).toMatchObject({
      state: "available",
      serial: first.serial,
      lastError: expect.stringContaining("CA is down"),
    });

    down = false;
    const [, second] = await once(m, "rotated");
    expect(second.serial).not.toBe(first.serial);
    expect(m.get(SLEEP)).toBe(second);
    expect(m.snapshot()[0]).not.toHaveProperty("lastError");
    expect(ca.seen.length).toBeGreaterThanOrEqual(3);
  });

  it("waits in steps for a half life longer than setTimeout can take", async () => {
    // Date moves with the timers here: the manager re-reads the clock at each step.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"], shouldAdvanceTime: true });
    const ca = await fakeCa(sign);
    const m = manager(ca.address, { ttlSeconds: 60 * 24 * 3600 });
    m.setIdentities([SLEEP]);
    await m.whenReady(SLEEP);
    const refreshAt = Date.parse(m.snapshot()[0]!.nextRefresh!);
    await vi.advanceTimersByTimeAsync(2 ** 31);
    expect(ca.seen).toHaveLength(1);
    const rotated = once(m, "rotated");
    await vi.advanceTimersByTimeAsync(refreshAt - Date.now() + 10);
    await rotated;
    expect(ca.seen).toHaveLength(2);
  });

  it("stops a dropped identity's cycle and rejects its waiters; refuses unknown identities", async () => {
    const ca = await fakeCa(async () => ({ code: status.UNAVAILABLE, details: "down" }));
    const m = manager(ca.address);
    m.setIdentities([SLEEP, ECHO]);
    const waiting = m.whenReady(SLEEP);
    m.setIdentities([ECHO]);
    await expect(waiting).rejects.toMatchObject({ code: CertificateErrorCode.CERT_MANAGER_CLOSED });
    await expect(m.whenReady(SLEEP)).rejects.toMatchObject({ code: CertificateErrorCode.CERT_NOT_MANAGED });
    expect(m.snapshot().map((s) => s.identity)).toEqual([ECHO.toString()]);

    const aborted = new AbortController();
    const bounded = m.whenReady(ECHO, aborted.signal);
    aborted.abort(new Error("readiness timeout"));
    await expect(bounded).rejects.toThrow("readiness timeout");

    const pending = m.whenReady(ECHO);
    m.close();
    await expect(pending).rejects.toMatchObject({ code: CertificateErrorCode.CERT_MANAGER_CLOSED });
  });

  it("fails without asking the CA for another trust domain or without a node token", async () => {
    const ca = await fakeCa(sign);
    const m = manager(ca.address, {
      token: () => {
        throw new Error("ENOENT: node-1.token");
      },
    });
    const failures: string[] = [];
    m.on("fetchFailed", (_id, err) => failures.push(`${err.code} ${err.message}`));
    m.setIdentities([SLEEP, SpiffeId.parse("spiffe://other.mesh/ns/demo/sa/x")]);
    await vi.waitFor(() => expect(failures.length).toBeGreaterThanOrEqual(2));
    expect(failures).toEqual(
      expect.arrayContaining([
        "AMB_CA_REQUEST_FAILED cannot read the node token: ENOENT: node-1.token",
        'AMB_CERT_WRONG_TRUST_DOMAIN spiffe://other.mesh/ns/demo/sa/x is not in trust domain "cluster.local"; its CA cannot sign it',
      ]),
    );
    expect(ca.seen).toEqual([]);
  });

  it("stops serving a certificate once it expires", async () => {
    const ca = await fakeCa(sign, async () => ({ code: status.UNAVAILABLE, details: "down" }));
    let skewMs = 0;
    const m = manager(ca.address, { ttlSeconds: 3600, now: () => new Date(Date.now() + skewMs) });
    m.setIdentities([SLEEP]);
    const cert = await m.whenReady(SLEEP);
    skewMs = cert.notAfter.getTime() - Date.now() + 1;
    expect(m.get(SLEEP)).toBeUndefined();
    expect(m.ready([SLEEP])).toBe(false);
    expect(m.rootsPem()).toEqual([]);
    expect(m.snapshot()[0]?.state).toBe("pending");
  });
});
