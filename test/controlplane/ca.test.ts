// The control plane's CA over gRPC, as a ztunnel calls it: bearer node token, CSR, and
// ImpersonatedIdentity metadata. Only well-formed CSRs for pods on the caller's node are signed.

import { webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import { LocalTokenAuthenticator } from "@ambient/controlplane";
import {
  createWorkloadCsr,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  protos,
  SpiffeId,
  structFromJson,
  verifyWorkloadChain,
} from "@ambient/core";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, namespace, node, pod, type RunningControlPlane, startControlPlane } from "../utils/index.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const SLEEP = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/sleep");
const HTTPBIN = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/httpbin");

let env: RunningControlPlane;
let client: Client;

beforeAll(async () => {
  env = await startControlPlane(
    {
      "mesh.yaml": docs(
        namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
        node("node-1", "127.10.1.1"),
        node("node-2", "127.10.2.1"),
        pod({ name: "sleep", namespace: "demo", node: "node-1", ip: "127.10.1.10", sa: "sleep" }),
        pod({ name: "httpbin", namespace: "demo", node: "node-2", ip: "127.10.2.10", sa: "httpbin" }),
      ),
    },
    { watch: false },
  );
  client = new Client(env.cp.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await env?.stop();
});

async function tokenOf(nodeName: string): Promise<string> {
  return (await readFile(LocalTokenAuthenticator.tokenPath(env.state.path, nodeName), "utf8")).trim();
}

function createCertificate(
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

async function refusal(
  req: Partial<IstioCertificateRequest>,
  token: string | undefined,
): Promise<ServiceError> {
  try {
    await createCertificate(req, token);
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("request was signed");
}

async function rawCsr(names: x509.JsonGeneralName[]): Promise<string> {
  const keys = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: keys as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]["keys"],
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.SubjectAlternativeNameExtension(names, true)],
  });
  return csr.toString("pem");
}

const impersonate = (id: SpiffeId) => structFromJson({ ImpersonatedIdentity: id.toString() });

describe("IstioCertificateService/CreateCertificate", () => {
  it("signs a valid CSR for a pod on the caller's node: one SPIFFE SAN, chosen TTL, chain to the root", async () => {
    const { csrPem } = await createWorkloadCsr(SLEEP);
    const before = Date.now();
    const res = await createCertificate(
      { csr: csrPem, validityDuration: 3600, metadata: impersonate(SLEEP) },
      await tokenOf("node-1"),
    );
    expect(res.certChain).toHaveLength(2); // leaf, root
    expect(res.certChain[1]!.trim()).toBe(env.cp.ca.rootCertPem.trim());
    const verified = verifyWorkloadChain(res.certChain, env.cp.ca.rootCertsPem, {
      trustDomain: "cluster.local",
    });
    expect(verified.identity.toString()).toBe(SLEEP.toString());
    const ttl = verified.notAfter.getTime() - before;
    expect(ttl).toBeGreaterThan(3590_000);
    expect(ttl).toBeLessThan(3610_000);
    const leaf = new x509.X509Certificate(res.certChain[0]!);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([{ type: "url", value: SLEEP.toString() }]);
  });

  it("defaults the TTL to 24 hours", async () => {
    const { csrPem } = await createWorkloadCsr(SLEEP);
    const res = await createCertificate({ csr: csrPem }, await tokenOf("node-1"));
    const { notAfter } = verifyWorkloadChain(res.certChain, env.cp.ca.rootCertsPem);
    expect(Math.round((notAfter.getTime() - Date.now()) / 3600_000)).toBe(24);
  });

  it("refuses an identity of a pod on another node", async () => {
    const { csrPem } = await createWorkloadCsr(HTTPBIN);
    const err = await refusal({ csr: csrPem, metadata: impersonate(HTTPBIN) }, await tokenOf("node-1"));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /node "node-1" runs no pod with identity spiffe:\/\/cluster.local\/ns\/demo\/sa\/httpbin/,
    );
  });

  it("refuses a CSR with a DNS SAN", async () => {
    const csr = await rawCsr([
      { type: "url", value: SLEEP.toString() },
      { type: "dns", value: "sleep.demo" },
    ]);
    const err = await refusal({ csr }, await tokenOf("node-1"));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/DNS/);
  });

  it("refuses a CSR with two URI SANs", async () => {
    const csr = await rawCsr([
      { type: "url", value: SLEEP.toString() },
      { type: "url", value: "spiffe://cluster.local/ns/demo/sa/other" },
    ]);
    const err = await refusal({ csr }, await tokenOf("node-1"));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/2 URI SANs/);
  });

  it("refuses a CSR for another trust domain", async () => {
    const { csrPem } = await createWorkloadCsr(SpiffeId.parse("spiffe://evil.example/ns/demo/sa/sleep"));
    const err = await refusal({ csr: csrPem }, await tokenOf("node-1"));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/trust domain/);
  });

  it("refuses an ImpersonatedIdentity that differs from the CSR", async () => {
    const { csrPem } = await createWorkloadCsr(SLEEP);
    const err = await refusal({ csr: csrPem, metadata: impersonate(HTTPBIN) }, await tokenOf("node-1"));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/does not match/);
  });

  it("refuses callers without a valid node token", async () => {
    const { csrPem } = await createWorkloadCsr(SLEEP);
    expect((await refusal({ csr: csrPem }, undefined)).code).toBe(status.UNAUTHENTICATED);
    const bad = await refusal({ csr: csrPem }, "not-a-token");
    expect(bad.code).toBe(status.UNAUTHENTICATED);
    expect(bad.details).toMatch(/not a known node token/);
  });

  it("refuses garbage in the csr field", async () => {
    const err = await refusal(
      { csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" },
      await tokenOf("node-1"),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
  });
});
