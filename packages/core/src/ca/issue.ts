// Builds X.509 certificates: workload leaves (hand-encoded, the CA's hot path), the self-signed mesh
// root and intermediates (@peculiar/x509, rare). The extension profile copies what Istio's CA
// issues, so Envoy, ztunnel and Go clients accept our certificates and theirs interchangeably.

import { createHash, createPublicKey, randomBytes, sign } from "node:crypto";
import * as der from "./der.js";
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
  /** iPAddress SANs as 4 or 16 bytes (a serving certificate for a loopback harness). */
  ipAddresses?: readonly Uint8Array[];
  /** DER of the subject Name; empty (the default, as Istio issues) when absent. */
  subjectDer?: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Tests only: a leaf that claims to be a CA, to check verifiers refuse it. */
  isCa?: boolean;
}

export interface IssuedLeaf {
  der: Buffer;
  /** Lowercase hex, as Node and openssl print it. */
  serial: string;
  /** As encoded: whole seconds. */
  notBefore: Date;
  notAfter: Date;
}

export interface CaParams {
  spki: Uint8Array;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  pathLength?: number;
}

/**
 * Encodes and signs a leaf directly (see der.ts for why). The profile matches Go's crypto/x509 as
 * Istio uses it: basicConstraints and keyUsage critical, serverAuth + clientAuth, the issuer's key
 * id, and the URI SAN critical when the subject is empty (RFC 5280 §4.2.1.6).
 */
export function issueLeafCertificate(issuer: Issuer, params: LeafParams): IssuedLeaf {
  const facts = issuerFacts(issuer.cert);
  const serial = randomSerial();
  const notBefore = wholeSeconds(params.notBefore);
  const notAfter = wholeSeconds(params.notAfter);
  const subject = params.subjectDer ?? EMPTY_NAME;
  const names = [
    ...params.uris.map((u) => der.implicitPrimitive(6, der.ia5(u))),
    ...(params.dnsNames ?? []).map((d) => der.implicitPrimitive(2, der.ia5(d))),
    ...(params.ipAddresses ?? []).map((ip) => der.implicitPrimitive(7, ip)),
  ];
  const extensions = [
    extension(OID.keyUsage, true, params.isCa ? der.namedBits([0, 5]) : der.namedBits([0, 2])),
    extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth), der.oid(OID.clientAuth))),
    extension(OID.basicConstraints, true, params.isCa ? der.sequence(der.booleanTrue()) : der.sequence()),
    extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, facts.keyId))),
  ];
  const emptySubject = Buffer.compare(subject, EMPTY_NAME) === 0;
  if (names.length > 0) extensions.push(extension(OID.subjectAltName, emptySubject, der.sequence(...names)));

  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)), // v3
    der.unsignedInteger(serial),
    issuer.key.signatureAlgorithm,
    facts.subjectDer,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    subject,
    params.spki,
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign(issuer.key.hash, tbs, issuer.key.keyObject);
  return {
    der: der.sequence(tbs, issuer.key.signatureAlgorithm, der.bitStringBytes(signature)),
    serial: serialHex(serial),
    notBefore,
    notAfter,
  };
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
    extensions: [...(await caExtensions(spki, params.pathLength)), authorityKeyIdentifier(issuer.cert)],
  });
}

const OID = {
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

const EMPTY_NAME = der.sequence();

/** A random positive 128-bit serial, as RFC 5280 §4.1.2.2 and CA/B guidance ask (≥ 64 bits). */
function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  // Clear the sign bit so the INTEGER is positive without a pad byte: still 127 random bits.
  bytes[0] = bytes[0]! & 0x7f;
  return bytes;
}

function randomSerialHex(): string {
  return randomSerial().toString("hex");
}

/** Hex of the INTEGER's magnitude without leading zero bytes, which is how OpenSSL prints it. */
function serialHex(serial: Buffer): string {
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start++;
  return serial.subarray(start).toString("hex");
}

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? der.sequence(der.oid(id), der.booleanTrue(), der.octetString(value))
    : der.sequence(der.oid(id), der.octetString(value));
}

/**
 * The issuer name and key id every leaf copies, computed once per CA certificate. The key id is
 * the issuer's own subject key id, verbatim: recomputing it could differ from what a foreign
 * (plugged) CA put there, and OpenSSL refuses a chain whose ids disagree.
 */
const factsCache = new WeakMap<x509.X509Certificate, { subjectDer: Buffer; keyId: Buffer }>();

function issuerFacts(cert: x509.X509Certificate): { subjectDer: Buffer; keyId: Buffer } {
  let facts = factsCache.get(cert);
  if (!facts) {
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const keyId = ski ? Buffer.from(ski.keyId, "hex") : createHash("sha1").update(spkiKeyBits(cert)).digest();
    facts = { subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()), keyId };
    factsCache.set(cert, facts);
  }
  return facts;
}

/** RFC 5280 §4.2.1.2 method 1 hashes the subjectPublicKey BIT STRING contents, not the whole SPKI. */
function spkiKeyBits(cert: x509.X509Certificate): Buffer {
  const spki = createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: "der", type: "spki" });
  const jwk = spki.export({ format: "jwk" });
  if (jwk.kty === "EC" && jwk.x && jwk.y) {
    return Buffer.concat([
      Buffer.from([4]),
      Buffer.from(jwk.x, "base64url"),
      Buffer.from(jwk.y, "base64url"),
    ]);
  }
  return Buffer.from(spki.export({ format: "der", type: "pkcs1" }));
}

async function caExtensions(spki: ArrayBuffer, pathLength?: number): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(spki),
  ];
}

function authorityKeyIdentifier(issuerCert: x509.X509Certificate): x509.Extension {
  return new x509.AuthorityKeyIdentifierExtension(issuerFacts(issuerCert).keyId.toString("hex"));
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
