// Turns CA material (Istio's four PEM files) into a signer, checking everything that would
// otherwise surface later as workloads failing mTLS: key/cert pairing, CA flags, validity and the
// chain up to root-cert.pem. Each failure is CA_LOAD_FAILED naming the file and the problem.

import { X509Certificate } from "node:crypto";
import { AmbientError, ErrorCode } from "../errors/errors.js";
import type { CaMaterial, CaSources } from "./ca-files.js";
import { formatDn, notAfter, notBefore, serialOf } from "./certificate-info.js";
import type { Issuer } from "./issue.js";
import { importSigningKey, type SigningKey } from "./keys.js";
import { splitCertificatePems } from "./pem.js";
import { issuerProblem } from "./verify.js";
import { x509 } from "./x509.js";

export interface LoadedCa {
  issuer: Issuer;
  /** What follows a leaf in an issued chain: ca-cert (unless it is the root), intermediates, root. */
  chainTailPem: string[];
  /** Every root in root-cert.pem (several during a root rotation). */
  rootsPem: string[];
  /** The root this CA's chain ends at. */
  anchorPem: string;
  /** No leaf may outlive any certificate above it. */
  notAfterCap: Date;
}

export async function loadCaMaterial(material: CaMaterial, src: CaSources, now: Date): Promise<LoadedCa> {
  const caCertPems = certificates(material.caCertPem, src.caCert);
  if (caCertPems.length !== 1) {
    throw fail(
      src.caCert,
      `holds ${caCertPems.length} certificates; it must hold only the signing certificate (the rest belong in cert-chain.pem)`,
    );
  }
  const caCertPem = caCertPems[0]!;
  const caCert = new X509Certificate(caCertPem);
  const caLabel = describe(caCert);

  let key: SigningKey;
  try {
    key = await importSigningKey(material.caKeyPem);
  } catch (err) {
    throw fail(src.caKey, (err as Error).message, err);
  }
  const certSpki = caCert.publicKey.export({ format: "der", type: "spki" });
  if (!certSpki.equals(key.spki)) {
    throw fail(
      src.caKey,
      `private key does not match the certificate in ${src.caCert} (their public keys differ)`,
    );
  }
  checkCaCertificate(caCert, src.caCert, now);

  // Without root-cert.pem (a state folder we wrote for a self-signed root) ca-cert is its own root.
  const rootsPem =
    material.rootCertPem === undefined ? [caCertPem] : certificates(material.rootCertPem, src.rootCert);
  const roots = rootsPem.map((pem) => new X509Certificate(pem));
  if (material.rootCertPem === undefined && !isSelfSigned(caCert)) {
    throw fail(
      src.rootCert,
      `is missing and ${src.caCert} holds ${caLabel}, which is not self-signed, so there is no root to trust`,
    );
  }

  // cert-chain.pem is "ca-cert up to root" in Istio's docs but often omits one end; accept both.
  const chainPems =
    material.certChainPem === undefined ? [] : certificates(material.certChainPem, src.certChain);
  const chainTop = chainPems[chainPems.length - 1];
  if (chainTop !== undefined && chainTop !== caCertPem && !rootsPem.includes(chainTop)) {
    const top = new X509Certificate(chainTop);
    if (isSelfSigned(top)) {
      throw fail(src.rootCert, `does not contain the root that ${src.certChain} ends with, ${describe(top)}`);
    }
  }
  const intermediatesPem = chainPems.filter((pem) => pem !== caCertPem && !rootsPem.includes(pem));
  const intermediates = intermediatesPem.map((pem) => new X509Certificate(pem));
  for (const cert of intermediates) checkCaCertificate(cert, src.certChain, now);

  const path = [caCert, ...intermediates];
  for (let i = 0; i + 1 < path.length; i++) {
    const problem = issuerProblem(path[i]!, path[i + 1]!, describe(path[i]!));
    if (problem) throw fail(src.certChain, problem.message, problem);
  }
  const top = path[path.length - 1]!;
  const anchor = roots.find((r) => r.raw.equals(top.raw)) ?? roots.find((r) => !issuerProblem(top, r, ""));
  if (!anchor) {
    const named = roots.filter((r) => r.subject === top.issuer);
    const problem = named.map((r) => issuerProblem(top, r, describe(top))).find((p) => p !== undefined);
    const why =
      problem?.message ??
      `${describe(top)} was issued by ${JSON.stringify(formatDn(top.issuer))}, but it holds only ${roots
        .map((r) => JSON.stringify(formatDn(r.subject)))
        .join(", ")}`;
    throw fail(src.rootCert, `does not hold the root that issued the chain: ${why}`, problem);
  }
  checkCaCertificate(anchor, src.rootCert, now);
  const anchorPem = rootsPem[roots.indexOf(anchor)]!;

  const tail = [
    ...(anchor === caCert || anchor.raw.equals(caCert.raw) ? [] : [caCertPem]),
    ...intermediatesPem,
  ];
  const notAfterCap = new Date(
    Math.min(...[caCert, ...intermediates, anchor].map((c) => notAfter(c).getTime())),
  );
  return {
    issuer: { cert: new x509.X509Certificate(caCert.raw), key },
    chainTailPem: [...tail, anchorPem],
    rootsPem,
    anchorPem,
    notAfterCap,
  };
}

/** CA:true, keyCertSign when keyUsage is present, and valid now. */
function checkCaCertificate(cert: X509Certificate, source: string, now: Date): void {
  const what = describe(cert);
  if (!cert.ca) throw fail(source, `${what} is not a CA certificate (basicConstraints CA:false or absent)`);
  const ku = new x509.X509Certificate(cert.raw).getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw fail(source, `${what} has keyUsage without keyCertSign, so it cannot sign certificates`);
  }
  if (now.getTime() > notAfter(cert).getTime()) {
    throw fail(source, `${what} expired at ${notAfter(cert).toISOString()} (now ${now.toISOString()})`);
  }
  if (now.getTime() < notBefore(cert).getTime()) {
    throw fail(
      source,
      `${what} is not valid until ${notBefore(cert).toISOString()} (now ${now.toISOString()}); check clocks`,
    );
  }
}

function describe(cert: X509Certificate): string {
  return `certificate ${JSON.stringify(formatDn(cert.subject))} (serial ${serialOf(cert)})`;
}

function isSelfSigned(cert: X509Certificate): boolean {
  return cert.issuer === cert.subject && cert.verify(cert.publicKey);
}

function certificates(text: string, source: string): string[] {
  let pems: string[];
  try {
    pems = splitCertificatePems(text);
  } catch (err) {
    throw fail(source, (err as Error).message, err);
  }
  for (const [i, pem] of pems.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw fail(source, `certificate ${i + 1} cannot be parsed (${(err as Error).message})`, err);
    }
  }
  return pems;
}

function fail(source: string, problem: string, cause?: unknown): AmbientError {
  return new AmbientError(ErrorCode.CA_LOAD_FAILED, `${source}: ${problem}`, {
    cause,
    details: { file: source },
  });
}
