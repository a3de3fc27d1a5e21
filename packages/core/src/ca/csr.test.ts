import { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import { SpiffeId } from "../identity/spiffe.js";
import { createWorkloadCsr, inspectCsr, validateWorkloadCsr } from "./csr.js";
import { encodePem } from "./pem.js";
import { x509 } from "./x509.js";

const TD = "cluster.local";
const ID = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/productpage");

/** A CSR with arbitrary SANs and key, as a misbehaving or hostile client would send. */
async function rawCsr(
  names: x509.JsonGeneralName[],
  key: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" },
): Promise<string> {
  const keys = await webcrypto.subtle.generateKey(key, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: keys as never,
    signingAlgorithm: { name: "ECDSA", hash: key.namedCurve === "P-384" ? "SHA-384" : "SHA-256" },
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names, true)] : [],
  });
  return encodePem("CERTIFICATE REQUEST", csr.rawData);
}

async function refusal(
  csr: string | Uint8Array,
  trustDomain = TD,
): Promise<{ code: string; message: string }> {
  try {
    await validateWorkloadCsr(csr, trustDomain);
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error("CSR was accepted");
}

describe("createWorkloadCsr", () => {
  it("has an empty subject, exactly one URI SAN and a P-256 key", async () => {
    const { csrPem, privateKeyPem } = await createWorkloadCsr(ID);
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const info = await inspectCsr(csrPem);
    expect(info.subject).toBe("");
    expect(info.uriSans).toEqual([ID.toString()]);
    expect([...info.dnsSans, ...info.ipSans, ...info.emailSans, ...info.otherSans]).toEqual([]);
    expect(info.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(info.signatureValid).toBe(true);
    // The SAN is critical because the subject is empty.
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(csr.getExtension("2.5.29.17")?.critical).toBe(true);
  });

  it("validates back to the same identity", async () => {
    const { csrPem } = await createWorkloadCsr(ID);
    const { identity, spki } = await validateWorkloadCsr(csrPem, TD);
    expect(identity.equals(ID)).toBe(true);
    expect(spki.length).toBeGreaterThan(60);
  });

  it("accepts DER bytes as well as PEM", async () => {
    const { csrPem } = await createWorkloadCsr(ID);
    const der = new x509.Pkcs10CertificateRequest(csrPem).rawData;
    expect((await validateWorkloadCsr(new Uint8Array(der), TD)).identity.equals(ID)).toBe(true);
  });
});

describe("inspectCsr", () => {
  it("sorts SANs by type", async () => {
    const info = await inspectCsr(
      await rawCsr([
        { type: "url", value: "spiffe://a/ns/b/sa/c" },
        { type: "dns", value: "x.example.com" },
        { type: "ip", value: "10.0.0.1" },
        { type: "email", value: "a@b.c" },
      ]),
    );
    expect(info).toMatchObject({
      uriSans: ["spiffe://a/ns/b/sa/c"],
      dnsSans: ["x.example.com"],
      ipSans: ["10.0.0.1"],
      emailSans: ["a@b.c"],
      signatureValid: true,
    });
  });
});

describe("validateWorkloadCsr refuses", () => {
  it("a DNS SAN", async () => {
    const csr = await rawCsr([
      { type: "url", value: ID.toString() },
      { type: "dns", value: "productpage.default.svc" },
    ]);
    const err = await refusal(csr);
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("non-URI SANs (DNS:productpage.default.svc)");
  });

  it("IP and email SANs", async () => {
    const csr = await rawCsr([
      { type: "url", value: ID.toString() },
      { type: "ip", value: "10.1.2.3" },
      { type: "email", value: "x@y.z" },
    ]);
    const err = await refusal(csr);
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("IP:10.1.2.3, email:x@y.z");
  });

  it("two URI SANs", async () => {
    const other = "spiffe://cluster.local/ns/kube-system/sa/admin";
    const err = await refusal(
      await rawCsr([
        { type: "url", value: ID.toString() },
        { type: "url", value: other },
      ]),
    );
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("CSR has 2 URI SANs");
    expect(err.message).toContain("must have exactly one");
    expect(err.message).toContain(other);
  });

  it("no SAN at all", async () => {
    const err = await refusal(await rawCsr([]));
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("CSR has 0 URI SANs");
  });

  it("another trust domain, with CERT_WRONG_TRUST_DOMAIN", async () => {
    const err = await refusal(
      await rawCsr([{ type: "url", value: "spiffe://evil.example/ns/default/sa/x" }]),
    );
    expect(err.code).toBe(ErrorCode.CERT_WRONG_TRUST_DOMAIN);
    expect(err.message).toContain('trust domain "evil.example"');
    expect(err.message).toContain('signs only for "cluster.local"');
  });

  it("a URI SAN that is not a SPIFFE ID", async () => {
    const err = await refusal(await rawCsr([{ type: "url", value: "https://example.com/ns/a/sa/b" }]));
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("CSR URI SAN is not a workload SPIFFE ID");
    expect(err.message).toContain('has scheme "https"');
  });

  it("a SPIFFE ID that is not a workload identity", async () => {
    const err = await refusal(await rawCsr([{ type: "url", value: "spiffe://cluster.local/ztunnel" }]));
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("has 1 path segments; expected 4");
  });

  it.each([
    ["garbage text", "hello", "CSR is not PEM: no PEM block found"],
    ["an empty string", "", "CSR is empty"],
    [
      "a certificate instead",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      '"CERTIFICATE" PEM block',
    ],
    [
      "PEM with garbage DER",
      "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE REQUEST-----\n",
      "not a valid PKCS#10 request",
    ],
    [
      "non-base64 body",
      "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
      "not base64",
    ],
    ["an oversized body", "x".repeat(70_000), "the limit is 65536"],
  ])("%s", async (_name, csr, words) => {
    const err = await refusal(csr);
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain(words);
  });

  it("a tampered signature", async () => {
    const { csrPem } = await createWorkloadCsr(ID);
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    der[der.length - 1] = der[der.length - 1]! ^ 0x01;
    const err = await refusal(encodePem("CERTIFICATE REQUEST", der));
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("signature does not verify");
  });

  it("a key that is not EC P-256", async () => {
    const csr = await rawCsr([{ type: "url", value: ID.toString() }], { name: "ECDSA", namedCurve: "P-384" });
    const err = await refusal(csr);
    expect(err.code).toBe(ErrorCode.CSR_INVALID);
    expect(err.message).toContain("CSR key is EC P-384; workload keys must be EC P-256");
  });
});
