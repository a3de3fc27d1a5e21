// Builds X.509 certificates: the self-signed mesh root, intermediates (tests, plugged-CA setups) and
// workload leaves. The extension profile copies what Istio's CA issues, so Envoy, ztunnel and Go
// clients accept our certificates and theirs interchangeably.

import { randomBytes } from "node:crypto";
import type { SigningKey } from "./keys.js";
import { x509 } from "./x509.js";

/** The certificate and key that sign; `cert` supplies the issuer name and authority key id. */
export interface Issuer {
  cert: x509.X509Certificate;
  key: SigningKey;
}

export interface LeafParams {
  /** SubjectPublicKeyInfo DER of the workload key. */
  spki: Uint8Array;
  uris: readonly string[];
  dnsNames?: readonly string[];
  /** Empty (the default, as Istio issues) or a DN string such as "CN=foo". */
  subject?: string;
  notBefore: Date;
  notAfter: Date;
  /** Tests only: a leaf that claims to be a CA, to check verifiers refuse it. */
  isCa?: boolean;
}

export interface CaParams {
  spki: Uint8Array;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  pathLength?: number;
}

/** A random positive 128-bit serial, as RFC 5280 §4.1.2.2 and CA/B guidance ask (≥ 64 bits). */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  // Clear the sign bit so the INTEGER is positive without a pad byte; a zero top byte is fine,
  // the encoder strips it. Still ≥ 127 bits of randomness.
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

export async function issueLeafCertificate(
  issuer: Issuer,
  params: LeafParams,
): Promise<x509.X509Certificate> {
  const names: x509.JsonGeneralName[] = [
    ...params.uris.map((value) => ({ type: "url" as const, value })),
    ...(params.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
  ];
  const subject = params.subject ?? "";
  const extensions: x509.Extension[] = [
    // Go's crypto/x509 (and so Istio) marks basic constraints and key usage critical.
    new x509.BasicConstraintsExtension(params.isCa === true, undefined, true),
    new x509.KeyUsagesExtension(
      params.isCa
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    await authorityKeyIdentifier(issuer.cert),
  ];
  // RFC 5280 §4.2.1.6: with an empty subject the SAN carries the identity and must be critical.
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, subject === ""));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: subject === "" ? undefined : subject,
    issuer: issuer.cert.subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: toArrayBuffer(params.spki),
    signingKey: issuer.key.key as never,
    signingAlgorithm: issuer.key.algorithm as never,
    extensions,
  });
}

/** A self-signed root: CA:true, keyCertSign + cRLSign, subject key id, as Istio's self-signed CA. */
export async function createRootCertificate(
  key: SigningKey,
  params: CaParams,
): Promise<x509.X509Certificate> {
  const spki = toArrayBuffer(params.spki);
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: params.subject,
    issuer: params.subject,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: spki,
    signingKey: key.key as never,
    signingAlgorithm: key.algorithm as never,
    extensions: await caExtensions(spki, params.pathLength),
  });
}

/** An intermediate signing certificate (Istio's plugged `ca-cert.pem`) issued by `issuer`. */
export async function issueIntermediateCertificate(
  issuer: Issuer,
  params: CaParams,
): Promise<x509.X509Certificate> {
  const spki = toArrayBuffer(params.spki);
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: params.subject,
    issuer: issuer.cert.subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: spki,
    signingKey: issuer.key.key as never,
    signingAlgorithm: issuer.key.algorithm as never,
    extensions: [...(await caExtensions(spki, params.pathLength)), await authorityKeyIdentifier(issuer.cert)],
  });
}

async function caExtensions(spki: ArrayBuffer, pathLength?: number): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(spki),
  ];
}

/**
 * The issuer's own subject key id, copied verbatim. Recomputing it from the key could differ from
 * what a foreign (plugged) CA put there, and OpenSSL refuses a chain whose ids disagree.
 */
async function authorityKeyIdentifier(issuerCert: x509.X509Certificate): Promise<x509.Extension> {
  const ski = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  return x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey.rawData);
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
