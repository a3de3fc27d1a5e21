// Reads the facts of a certificate that logs, config dumps and verification need (identity,
// serial, validity, names) from Node's X509Certificate, which parses in C; its string forms
// (validFrom, subjectAltName, multi-line DNs) are converted back to values in this one place.

import { X509Certificate } from "node:crypto";
import { AmbientError, ErrorCode } from "../errors/errors.js";

export interface CertificateDescription {
  /** The SPIFFE URI SAN, when there is exactly one. */
  identity?: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  issuer: string;
  subject: string;
}

/** Facts for config dumps and logs; never throws on a certificate without a SPIFFE SAN. */
export function describeCertificate(pem: string): CertificateDescription {
  const cert = parseCertificate(pem, "certificate");
  const uris = subjectAltNames(cert).filter((n) => n.type === "URI");
  const description: CertificateDescription = {
    serial: serialOf(cert),
    notBefore: notBefore(cert),
    notAfter: notAfter(cert),
    issuer: formatDn(cert.issuer),
    subject: formatDn(cert.subject),
  };
  if (uris.length === 1) description.identity = uris[0]!.value;
  return description;
}

// Parsing costs ~150 µs per certificate with the OpenSSL 3.0 that Node 20 ships (its provider-based
// key decoding), twice an ECDSA verify. Peers present the same few chains on every connection, so
// parsed certificates are kept, least recently used first out; huge inputs are never kept.
const PARSE_CACHE_LIMIT = 1024;
const PARSE_CACHE_MAX_PEM = 16 * 1024;
const parsed = new Map<string, X509Certificate>();

/** `parseCertificate` through a bounded cache; the returned object is shared, and immutable. */
export function parseCertificateCached(pem: string, what: string): X509Certificate {
  const hit = parsed.get(pem);
  if (hit) {
    parsed.delete(pem);
    parsed.set(pem, hit);
    return hit;
  }
  const cert = parseCertificate(pem, what);
  if (pem.length <= PARSE_CACHE_MAX_PEM) {
    parsed.set(pem, cert);
    if (parsed.size > PARSE_CACHE_LIMIT) parsed.delete(parsed.keys().next().value!);
  }
  return cert;
}

export function parseCertificate(pem: string, what: string): X509Certificate {
  if (typeof pem !== "string" || !pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new AmbientError(
      ErrorCode.CERT_MALFORMED,
      `${what} is not a PEM certificate (no "BEGIN CERTIFICATE")`,
    );
  }
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new AmbientError(ErrorCode.CERT_MALFORMED, `${what} cannot be parsed (${(err as Error).message})`, {
      cause: err,
    });
  }
}

export function notBefore(cert: X509Certificate): Date {
  // Node 20 has no validFromDate; OpenSSL's "Mar  1 12:00:00 2026 GMT" is what Date parses.
  return new Date(cert.validFrom);
}

export function notAfter(cert: X509Certificate): Date {
  return new Date(cert.validTo);
}

export function serialOf(cert: X509Certificate): string {
  return cert.serialNumber.toLowerCase();
}

/** "O=cluster.local, CN=x" from Node's newline-separated form; "(empty)" for an empty name. */
export function formatDn(dn: string | undefined): string {
  // Node reports an empty name (a workload leaf's subject) as undefined.
  const text = (dn ?? "").trim();
  return text === "" ? "(empty)" : text.split("\n").join(", ");
}

/**
 * Node's subjectAltName string parsed back into entries. Node JSON-quotes values that contain
 * separators or quotes (CVE-2021-44532), so a crafted SAN cannot smuggle in a second entry.
 */
export function subjectAltNames(cert: X509Certificate): { type: string; value: string }[] {
  const san = cert.subjectAltName ?? "";
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(":", i);
    if (colon < 0) break;
    const type = san.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (san[j] === '"') {
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(san.slice(j, k + 1)) as string;
      } catch {
        value = san.slice(j, k + 1);
      }
      j = k + 1;
    } else {
      const end = san.indexOf(", ", j);
      j = end < 0 ? san.length : end;
      value = san.slice(colon + 1, j);
    }
    out.push({ type, value });
    i = san.startsWith(", ", j) ? j + 2 : j + 1;
  }
  return out;
}
