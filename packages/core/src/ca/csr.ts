// Workload certificate signing requests: ztunnel creates them, the CA validates them. A CSR is
// untrusted input from the network, so validation names exactly what is wrong and the CA copies
// nothing from it but the public key and the one SPIFFE URI SAN.

import { createPublicKey, type KeyObject, verify } from "node:crypto";
import { AmbientError, ErrorCode } from "../errors/errors.js";
import { SpiffeId } from "../identity/spiffe.js";
import { firstElement } from "./der.js";
import { describePublicKey, ECDSA_SHA256, exportPrivateKeyPem, generateP256KeyPair, isP256 } from "./keys.js";
import { decodePemOfType, encodePem } from "./pem.js";
import { x509 } from "./x509.js";

const CSR_LABELS = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"] as const;
// A workload CSR is ~400 bytes; anything near this limit is not one, and parsing it costs CPU.
const MAX_CSR_BYTES = 64 * 1024;
const SAN_OID = "2.5.29.17";

export interface WorkloadCsr {
  csrPem: string;
  /** PKCS#8 PEM, loadable by node:tls as `key`. */
  privateKeyPem: string;
}

export interface CsrInfo {
  /** The subject DN as a string; "" when empty (as workload CSRs are). */
  subject: string;
  uriSans: string[];
  dnsSans: string[];
  ipSans: string[];
  emailSans: string[];
  /** SAN entries of any other type (directory names, registered ids, other names), as "type:value". */
  otherSans: string[];
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER as sent. */
  spki: Buffer;
  signatureValid: boolean;
}

export interface ValidatedCsr {
  identity: SpiffeId;
  publicKey: KeyObject;
  /** Canonical SubjectPublicKeyInfo DER, what the CA puts in the certificate. */
  spki: Buffer;
}

/** A fresh P-256 key and a CSR for `id`: empty subject and exactly one URI SAN, as ztunnel sends. */
export async function createWorkloadCsr(id: SpiffeId): Promise<WorkloadCsr> {
  const keys = await generateP256KeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: keys as never,
    signingAlgorithm: ECDSA_SHA256 as never,
    // Critical because the subject is empty (RFC 5280 §4.2.1.6), mirroring the issued leaf.
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: id.toString() }], true)],
  });
  return {
    csrPem: encodePem("CERTIFICATE REQUEST", csr.rawData),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
  };
}

/** Everything the CA looks at in a CSR. Throws CSR_INVALID only when it cannot be parsed at all. */
export async function inspectCsr(csr: string | Uint8Array): Promise<CsrInfo> {
  const parsed = parseCsr(csr);
  const info = {
    subject: parsed.subject,
    uriSans: [] as string[],
    dnsSans: [] as string[],
    ipSans: [] as string[],
    emailSans: [] as string[],
    otherSans: [] as string[],
  };
  for (const name of subjectAltNames(parsed)) {
    if (name.type === "url") info.uriSans.push(name.value);
    else if (name.type === "dns") info.dnsSans.push(name.value);
    else if (name.type === "ip") info.ipSans.push(name.value);
    else if (name.type === "email") info.emailSans.push(name.value);
    else info.otherSans.push(`${name.type}:${name.value}`);
  }
  const spki = Buffer.from(parsed.publicKey.rawData);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (err) {
    throw invalid(`CSR public key cannot be read (${(err as Error).message})`, {}, err);
  }
  return { ...info, publicKey, spki, signatureValid: await verifySignature(parsed, publicKey) };
}

/**
 * Checks a CSR is an acceptable workload request for `trustDomain` and returns the identity it
 * asks for. Every failure is CSR_INVALID except a well-formed request for another trust domain,
 * which is CERT_WRONG_TRUST_DOMAIN: that one is a federation or misconfiguration question, not a
 * broken client, and callers and metrics want to tell the two apart. The subject and any requested
 * extensions other than the SAN are ignored, as Istio's CA ignores them.
 */
export async function validateWorkloadCsr(
  csr: string | Uint8Array,
  trustDomain: string,
): Promise<ValidatedCsr> {
  const info = await inspectCsr(csr);
  if (!isP256(info.publicKey)) {
    throw invalid(`CSR key is ${describePublicKey(info.publicKey)}; workload keys must be EC P-256`);
  }
  if (!info.signatureValid) {
    throw invalid("CSR signature does not verify with its own public key (corrupted or tampered request)");
  }
  const others = [
    ...info.dnsSans.map((v) => `DNS:${v}`),
    ...info.ipSans.map((v) => `IP:${v}`),
    ...info.emailSans.map((v) => `email:${v}`),
    ...info.otherSans,
  ];
  if (others.length > 0) {
    throw invalid(`CSR has non-URI SANs (${listed(others)}); a workload CSR may only carry its SPIFFE ID`, {
      sans: others.slice(0, 16),
    });
  }
  if (info.uriSans.length !== 1) {
    const which = info.uriSans.length > 0 ? ` (${listed(info.uriSans)})` : "";
    throw invalid(`CSR has ${info.uriSans.length} URI SANs${which}; a workload CSR must have exactly one`, {
      sans: info.uriSans.slice(0, 16),
    });
  }
  const uri = info.uriSans[0]!;
  let identity: SpiffeId;
  try {
    identity = SpiffeId.parse(uri);
  } catch (err) {
    throw invalid(`CSR URI SAN is not a workload SPIFFE ID: ${(err as Error).message}`, { uri }, err);
  }
  if (identity.trustDomain !== trustDomain) {
    throw new AmbientError(
      ErrorCode.CERT_WRONG_TRUST_DOMAIN,
      `CSR asks for ${identity}, in trust domain "${identity.trustDomain}"; this CA signs only for "${trustDomain}"`,
      { details: { identity: identity.toString(), expected: trustDomain } },
    );
  }
  // Re-exported rather than copied: the certificate gets canonical DER whatever the client sent.
  const spki = info.publicKey.export({ format: "der", type: "spki" });
  return { identity, publicKey: info.publicKey, spki };
}

function parseCsr(csr: string | Uint8Array): x509.Pkcs10CertificateRequest {
  const size = typeof csr === "string" ? Buffer.byteLength(csr) : csr.byteLength;
  if (size === 0) throw invalid("CSR is empty");
  if (size > MAX_CSR_BYTES) throw invalid(`CSR is ${size} bytes; the limit is ${MAX_CSR_BYTES}`);
  let der: Uint8Array;
  if (typeof csr === "string") {
    let blocks: Buffer[];
    try {
      blocks = decodePemOfType(csr, CSR_LABELS);
    } catch (err) {
      throw invalid(`CSR is not PEM: ${(err as Error).message}`, {}, err);
    }
    if (blocks.length !== 1) throw invalid(`CSR PEM holds ${blocks.length} requests; expected one`);
    der = blocks[0]!;
  } else {
    der = csr;
  }
  try {
    return new x509.Pkcs10CertificateRequest(Buffer.from(der));
  } catch (err) {
    throw invalid(`CSR is not a valid PKCS#10 request (${(err as Error).message})`, {}, err);
  }
}

// ECDSA is what workloads use: verify it with node:crypto and the key already decoded (~0.1 ms),
// not through WebCrypto, which decodes the key again (~0.8 ms in all). Others take the slow path.
async function verifySignature(csr: x509.Pkcs10CertificateRequest, key: KeyObject): Promise<boolean> {
  try {
    const alg = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } };
    const hash = alg.hash?.name?.replace("-", "").toLowerCase(); // "SHA-256" -> "sha256"
    const tbs = firstElement(new Uint8Array(csr.rawData));
    if (alg.name === "ECDSA" && hash && tbs && key.asymmetricKeyType === "ec") {
      return verify(hash, tbs, key, new Uint8Array(csr.signature));
    }
    return await csr.verify();
  } catch {
    // An algorithm we cannot verify is, for our purposes, a signature we cannot trust.
    return false;
  }
}

function subjectAltNames(csr: x509.Pkcs10CertificateRequest): x509.JsonGeneralName[] {
  try {
    return csr.extensions
      .filter((ext) => ext.type === SAN_OID)
      .flatMap((ext) =>
        // The factory already built the typed extension; re-parse only if another copy of the
        // library produced it.
        (ext instanceof x509.SubjectAlternativeNameExtension
          ? ext
          : new x509.SubjectAlternativeNameExtension(ext.rawData)
        ).names.toJSON(),
      );
  } catch (err) {
    throw invalid(`CSR subjectAltName extension cannot be parsed (${(err as Error).message})`, {}, err);
  }
}

/** SANs for a message: a hostile CSR may carry thousands, or very long ones. */
function listed(items: readonly string[]): string {
  const shown = items.slice(0, 5).map((s) => (s.length > 120 ? `${s.slice(0, 120)}...` : s));
  return items.length > 5 ? `${shown.join(", ")}, and ${items.length - 5} more` : shown.join(", ");
}

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): AmbientError {
  return new AmbientError(ErrorCode.CSR_INVALID, message, { details, cause });
}
