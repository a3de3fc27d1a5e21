// Test certificate hierarchies: roots, intermediates and leaves with any validity window, SANs or
// flags, including ones a real CA must never issue (expired, no SPIFFE SAN, CA leaf), so tests of
// verifiers and proxies can build each failure directly. Not for production use.

import { SpiffeId } from "../identity/spiffe.js";
import { CertificateAuthority, type CertificateAuthorityOptions } from "./authority.js";
import { writeCaFolder } from "./ca-files.js";
import {
  createRootCertificate,
  type Issuer,
  issueIntermediateCertificate,
  issueLeafCertificate,
} from "./issue.js";
import { exportPrivateKeyPem, generateP256KeyPair, signingKeyFromPair } from "./keys.js";
import { encodePem } from "./pem.js";
import { x509 } from "./x509.js";

const HOUR_MS = 3600_000;

export interface TestCaOptions {
  trustDomain?: string;
  /** Defaults to "O=<trust domain>" for a root (as Istio), "O=<trust domain>, CN=Intermediate CA" below. */
  subject?: string;
  /** Defaults to an hour ago. */
  notBefore?: Date;
  /** Defaults to a year from now. */
  notAfter?: Date;
}

export interface TestLeafOptions {
  /** The SPIFFE URI SAN; defaults to spiffe://<td>/ns/default/sa/default. Ignored when `uris` is set. */
  identity?: SpiffeId | string;
  /** Exact URI SANs, e.g. [] for a leaf without one or two for an ambiguous one. */
  uris?: string[];
  dnsNames?: string[];
  subject?: string;
  /** Defaults to an hour ago. */
  notBefore?: Date;
  /** Defaults to an hour from now. */
  notAfter?: Date;
  isCa?: boolean;
}

export interface TestLeaf {
  /** Leaf first, then this CA's chain up to and including the root. */
  certChainPem: string[];
  privateKeyPem: string;
  serial: string;
}

/** A self-signed test root. */
export async function createTestRoot(opts: TestCaOptions = {}): Promise<TestCa> {
  const trustDomain = opts.trustDomain ?? "cluster.local";
  const pair = await generateP256KeyPair();
  const key = await signingKeyFromPair(pair);
  const now = Date.now();
  const cert = await createRootCertificate(key, {
    spki: key.spki,
    subject: opts.subject ?? `O=${trustDomain}`,
    notBefore: opts.notBefore ?? new Date(now - HOUR_MS),
    notAfter: opts.notAfter ?? new Date(now + 365 * 24 * HOUR_MS),
  });
  const certPem = encodePem("CERTIFICATE", cert.rawData);
  return new TestCa(trustDomain, { cert, key }, certPem, await exportPrivateKeyPem(pair.privateKey), [
    certPem,
  ]);
}

export class TestCa {
  /** @internal Use createTestRoot and createIntermediate. */
  constructor(
    readonly trustDomain: string,
    private readonly issuer: Issuer,
    /** This CA's own certificate. */
    readonly certPem: string,
    readonly keyPem: string,
    /** This CA's certificate up to and including the root. */
    readonly chainPem: string[],
  ) {}

  get rootCertPem(): string {
    return this.chainPem[this.chainPem.length - 1]!;
  }

  /** An intermediate CA signed by this one (root → intermediate, as a plugged cacerts CA). */
  async createIntermediate(opts: Omit<TestCaOptions, "trustDomain"> = {}): Promise<TestCa> {
    const pair = await generateP256KeyPair();
    const key = await signingKeyFromPair(pair);
    const now = Date.now();
    const cert = await issueIntermediateCertificate(this.issuer, {
      spki: key.spki,
      subject: opts.subject ?? `O=${this.trustDomain}, CN=Intermediate CA`,
      notBefore: opts.notBefore ?? new Date(now - HOUR_MS),
      notAfter: opts.notAfter ?? new Date(now + 180 * 24 * HOUR_MS),
    });
    const certPem = encodePem("CERTIFICATE", cert.rawData);
    return new TestCa(this.trustDomain, { cert, key }, certPem, await exportPrivateKeyPem(pair.privateKey), [
      certPem,
      ...this.chainPem,
    ]);
  }

  /** A leaf with whatever SANs and validity the test needs, signed without any CSR checks. */
  async issueLeaf(opts: TestLeafOptions = {}): Promise<TestLeaf> {
    const pair = await generateP256KeyPair();
    const key = await signingKeyFromPair(pair);
    const now = Date.now();
    const identity = opts.identity ?? `spiffe://${this.trustDomain}/ns/default/sa/default`;
    const leaf = issueLeafCertificate(this.issuer, {
      spki: key.spki,
      uris: opts.uris ?? [identity.toString()],
      dnsNames: opts.dnsNames ?? [],
      subjectDer: opts.subject ? Buffer.from(new x509.Name(opts.subject).toArrayBuffer()) : undefined,
      notBefore: opts.notBefore ?? new Date(now - HOUR_MS),
      notAfter: opts.notAfter ?? new Date(now + HOUR_MS),
      isCa: opts.isCa ?? false,
    });
    return {
      certChainPem: [encodePem("CERTIFICATE", leaf.der), ...this.chainPem],
      privateKeyPem: await exportPrivateKeyPem(pair.privateKey),
      serial: leaf.serial,
    };
  }

  /** A real, validated CertificateAuthority signing with this test CA. */
  async toAuthority(opts: Partial<CertificateAuthorityOptions> = {}): Promise<CertificateAuthority> {
    return CertificateAuthority.fromPem(
      {
        caCertPem: this.certPem,
        caKeyPem: this.keyPem,
        rootCertPem: this.rootCertPem,
        certChainPem: this.chainPem.join(""),
      },
      { ...opts, trustDomain: opts.trustDomain ?? this.trustDomain },
    );
  }

  /** Writes Istio's cacerts layout for this CA into `dir` (for fromPluggedFolder tests). */
  async writePluggedFolder(dir: string): Promise<void> {
    await writeCaFolder(dir, {
      caCertPem: this.certPem,
      caKeyPem: this.keyPem,
      rootCertPem: this.rootCertPem,
      certChainPem: this.chainPem.join(""),
    });
  }
}

/** Shorthand for the SPIFFE ID tests use most. */
export function testIdentity(
  namespace = "default",
  serviceAccount = "default",
  trustDomain = "cluster.local",
): SpiffeId {
  return SpiffeId.of({ trustDomain, namespace, serviceAccount });
}
