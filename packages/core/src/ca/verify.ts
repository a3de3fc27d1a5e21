// Verifies a peer's workload certificate chain against the mesh roots, synchronously, with Node's
// OpenSSL-backed X509Certificate: this runs on every mTLS handshake, so it avoids WebCrypto and
// ASN.1 in JavaScript on the success path. Each failure has its own code and names the certificate.

import type { X509Certificate } from "node:crypto";
import { AmbientError, ErrorCode } from "../errors/errors.js";
import { SpiffeId } from "../identity/spiffe.js";
import {
  formatDn,
  notAfter,
  notBefore,
  parseCertificateCached,
  serialOf,
  subjectAltNames,
} from "./certificate-info.js";
import { x509 } from "./x509.js";

export interface VerifyOptions {
  /** When set, the leaf's identity must be in this trust domain. */
  trustDomain?: string;
  now?: Date;
}

export interface VerifiedWorkload {
  identity: SpiffeId;
  /** Lowercase hex, as Istio and openssl print it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * Verifies `chainPem` (leaf first, then intermediates; a trailing root is allowed) up to one of
 * `rootsPem`. Checks run in this order: chain present, parseable, validity windows, issuer links
 * and signatures, intermediates are CAs, leaf SPIFFE SAN, trust domain.
 */
export function verifyWorkloadChain(
  chainPem: readonly string[],
  rootsPem: readonly string[],
  opts: VerifyOptions = {},
): VerifiedWorkload {
  if (chainPem.length === 0) {
    throw new AmbientError(
      ErrorCode.CERT_CHAIN_EMPTY,
      "certificate chain is empty; expected at least the leaf",
    );
  }
  const chain = chainPem.map((pem, i) =>
    parseCertificateCached(pem, i === 0 ? "leaf certificate" : `chain certificate ${i}`),
  );
  const roots = rootsPem.map((pem, i) => parseCertificateCached(pem, `trust root ${i}`));
  const now = opts.now ?? new Date();

  // Labels are built only on failure: formatting them costs more than the checks on the happy path.
  for (const [i, cert] of chain.entries()) checkValidity(cert, () => label(cert, i), now);

  for (let i = 0; i + 1 < chain.length; i++) {
    const problem = issuerProblem(chain[i]!, chain[i + 1]!, () => label(chain[i]!, i));
    if (problem) throw problem;
  }
  // A peer may append its own root. If that root is not one of ours, anchor the certificate below
  // it instead, so the error names the real mismatch (often: another mesh's root, same name).
  let end = chain.length - 1;
  const top = chain[end]!;
  if (end > 0 && top.checkIssued(top) && !roots.some((r) => r.raw.equals(top.raw))) end--;
  const last = chain[end]!;
  const root = findAnchor(last, roots, () => label(last, end));
  checkValidity(root, () => `trust root ${quoteDn(root.subject)}`, now);

  for (let i = 1; i < chain.length; i++) {
    const cert = chain[i]!;
    if (!cert.ca) {
      throw new AmbientError(
        ErrorCode.CERT_WRONG_ISSUER,
        `${label(cert, i)} is not a CA (basicConstraints CA:false or absent) and cannot issue certificates`,
      );
    }
  }
  const leaf = chain[0]!;
  // webpki (ztunnel) and Go refuse a CA certificate as an end entity; so do we.
  if (leaf.ca) {
    throw new AmbientError(ErrorCode.CERT_MALFORMED, `${label(leaf, 0)} is a CA certificate, not a workload`);
  }

  const identity = leafIdentity(leaf);
  if (opts.trustDomain !== undefined && identity.trustDomain !== opts.trustDomain) {
    throw new AmbientError(
      ErrorCode.CERT_WRONG_TRUST_DOMAIN,
      `${label(leaf, 0)} is in trust domain "${identity.trustDomain}"; expected "${opts.trustDomain}"`,
      { details: { identity: identity.toString(), expected: opts.trustDomain } },
    );
  }
  return { identity, serial: serialOf(leaf), notBefore: notBefore(leaf), notAfter: notAfter(leaf) };
}

/**
 * Why `parent` did not issue `child`, or undefined if it did. Also used by the CA loader to check a
 * plugged chain. Name mismatch and key-id mismatch are "wrong issuer"; a matching issuer whose
 * signature fails is "bad signature" (tampering or corruption, not misconfiguration).
 */
export function issuerProblem(
  child: X509Certificate,
  parent: X509Certificate,
  childLabel: Label,
): AmbientError | undefined {
  if (verifiedLinks.get(child)?.has(parent)) return undefined;
  const name = () => (typeof childLabel === "string" ? childLabel : childLabel());
  if (child.issuer !== parent.subject) {
    return new AmbientError(
      ErrorCode.CERT_WRONG_ISSUER,
      `${name()} was issued by ${quoteDn(child.issuer)}, but the next certificate is ${quoteDn(parent.subject)}`,
      { details: { issuer: formatDn(child.issuer) } },
    );
  }
  if (!child.checkIssued(parent)) {
    return new AmbientError(
      ErrorCode.CERT_WRONG_ISSUER,
      `${name()} names issuer ${quoteDn(child.issuer)}, but that certificate ${whyNotIssuer(child, parent)}`,
      { details: { issuer: formatDn(child.issuer) } },
    );
  }
  if (!child.verify(parent.publicKey)) {
    return new AmbientError(
      ErrorCode.CERT_BAD_SIGNATURE,
      `${name()} has a signature that does not verify with the key of its issuer ${quoteDn(parent.subject)}`,
      { details: { issuer: formatDn(child.issuer) } },
    );
  }
  const parents = verifiedLinks.get(child) ?? new WeakSet<X509Certificate>();
  parents.add(parent);
  verifiedLinks.set(child, parents);
  return undefined;
}

/** A message prefix naming a certificate, or a function building it only when needed. */
type Label = string | (() => string);

// A signature check is the other fixed cost (~75 µs for P-256). Parsed certificates are immutable
// and shared through the parse cache, so a link verified once stays verified for as long as both
// objects live; the weak maps let the cache's evictions drop the entries.
const verifiedLinks = new WeakMap<X509Certificate, WeakSet<X509Certificate>>();

function leafIdentity(leaf: X509Certificate): SpiffeId {
  const uris = subjectAltNames(leaf)
    .filter((n) => n.type === "URI")
    .map((n) => n.value);
  const what = `leaf certificate (serial ${serialOf(leaf)}, subject ${quoteDn(leaf.subject)})`;
  if (uris.length === 0) {
    throw new AmbientError(ErrorCode.CERT_NO_SPIFFE_SAN, `${what} has no URI SAN; expected one SPIFFE ID`);
  }
  if (uris.length > 1) {
    throw new AmbientError(
      ErrorCode.CERT_NO_SPIFFE_SAN,
      `${what} has ${uris.length} URI SANs (${uris.slice(0, 5).join(", ")}${uris.length > 5 ? ", ..." : ""}); a workload certificate must have exactly one`,
    );
  }
  try {
    return SpiffeId.parse(uris[0]!);
  } catch (err) {
    const message = `${what} URI SAN is not a SPIFFE ID: ${(err as Error).message}`;
    throw new AmbientError(ErrorCode.CERT_NO_SPIFFE_SAN, message, { cause: err });
  }
}

function findAnchor(
  last: X509Certificate,
  roots: readonly X509Certificate[],
  lastLabel: () => string,
): X509Certificate {
  if (roots.length === 0) {
    throw new AmbientError(
      ErrorCode.CERT_WRONG_ISSUER,
      `no trusted roots configured to verify ${lastLabel()}`,
    );
  }
  // A chain that ends with the trusted root itself (as Istio's CA returns it) is anchored as is.
  const identical = roots.find((r) => r.raw.equals(last.raw));
  if (identical) return identical;
  const named = roots.filter((r) => r.subject === last.issuer);
  if (named.length === 0) {
    throw new AmbientError(
      ErrorCode.CERT_WRONG_ISSUER,
      `${lastLabel()} was issued by ${quoteDn(last.issuer)}, which is not a trusted root (trusted: ${roots
        .map((r) => quoteDn(r.subject))
        .join(", ")})`,
      { details: { issuer: formatDn(last.issuer) } },
    );
  }
  // Several roots may share a name during a root rotation: any one that verifies anchors the chain.
  let firstProblem: AmbientError | undefined;
  for (const root of named) {
    const problem = issuerProblem(last, root, lastLabel);
    if (!problem) return root;
    if (!firstProblem || problem.code === ErrorCode.CERT_BAD_SIGNATURE) firstProblem = problem;
  }
  throw firstProblem!;
}

/** The precise reason OpenSSL's X509_check_issued said no, read with the slow parser (error path only). */
function whyNotIssuer(child: X509Certificate, parent: X509Certificate): string {
  try {
    const c = new x509.X509Certificate(child.raw);
    const p = new x509.X509Certificate(parent.raw);
    const akid = c.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    const skid = p.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    if (akid && skid && akid !== skid) {
      return `has a different key (authority key id ${akid}, issuer's subject key id ${skid}); it is another CA with the same name`;
    }
    const ku = p.getExtension(x509.KeyUsagesExtension);
    if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) return "lacks keyUsage keyCertSign";
  } catch {
    // Fall through to the generic reason.
  }
  return "is not its issuer (key identifier or key usage mismatch)";
}

function checkValidity(cert: X509Certificate, what: () => string, now: Date): void {
  const from = notBefore(cert);
  const to = notAfter(cert);
  if (now.getTime() > to.getTime()) {
    throw new AmbientError(
      ErrorCode.CERT_EXPIRED,
      `${what()} expired at ${to.toISOString()} (now ${now.toISOString()})`,
      { details: { serial: serialOf(cert), notAfter: to.toISOString() } },
    );
  }
  if (now.getTime() < from.getTime()) {
    throw new AmbientError(
      ErrorCode.CERT_NOT_YET_VALID,
      `${what()} is not valid until ${from.toISOString()} (now ${now.toISOString()}); check clocks`,
      { details: { serial: serialOf(cert), notBefore: from.toISOString() } },
    );
  }
}

/** `leaf certificate "spiffe://..." (serial ab12)` or `chain certificate 1 "O=..." (serial ...)`. */
function label(cert: X509Certificate, index: number): string {
  if (index === 0) {
    const uris = subjectAltNames(cert).filter((n) => n.type === "URI");
    const name = uris.length === 1 ? JSON.stringify(uris[0]!.value) : quoteDn(cert.subject);
    return `leaf certificate ${name} (serial ${serialOf(cert)})`;
  }
  return `chain certificate ${index} ${quoteDn(cert.subject)} (serial ${serialOf(cert)})`;
}

function quoteDn(dn: string | undefined): string {
  return JSON.stringify(formatDn(dn));
}
