// The mesh certificate authority: a self-signed root kept in a state folder, or an operator's
// plugged CA in Istio's cacerts layout. It signs validated workload CSRs into short-lived leaves
// shaped like Istio's, returned as the chain Istio's CA returns: leaf, intermediates, root.

import { AmbientError, ErrorCode } from "../errors/errors.js";
import { parseTrustDomain, type SpiffeId } from "../identity/spiffe.js";
import { parseIp } from "../net/ip.js";
import {
  type CaMaterial,
  type CaSources,
  DEFAULT_SOURCES,
  readPluggedFolder,
  readStateFolder,
  sourcesIn,
  writeCaFolder,
} from "./ca-files.js";
import { createWorkloadCsr, validateWorkloadCsr } from "./csr.js";
import { createRootCertificate, issueLeafCertificate } from "./issue.js";
import { exportPrivateKeyPem, generateP256KeyPair, signingKeyFromPair } from "./keys.js";
import { type LoadedCa, loadCaMaterial } from "./load-ca.js";
import { encodePem } from "./pem.js";

/** Istio's default workload certificate lifetime (DEFAULT_WORKLOAD_CERT_TTL). */
export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
/** Istio's MAX_WORKLOAD_CERT_TTL default: a stolen key is useful for at most this long. */
export const DEFAULT_MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;
/** Istio's self-signed root lifetime (CITADEL_SELF_SIGNED_CA_CERT_TTL). */
export const SELF_SIGNED_ROOT_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** Backdating absorbs clock skew between the CA and the peers that verify its certificates. */
export const CLOCK_SKEW_MS = 60_000;

export interface CertificateAuthorityOptions {
  trustDomain: string;
  now?: () => Date;
  maxTtlSeconds?: number;
}

export interface SignOptions {
  /** Defaults to 86400 (a day), as Istio. */
  ttlSeconds?: number;
  /** When given, the CSR's SAN must be exactly this identity (CSR_FORBIDDEN otherwise). */
  identity?: SpiffeId;
}

export interface SignedCertificate {
  /** Leaf first, root last. */
  certChainPem: string[];
  /** Lowercase hex. */
  serial: string;
  notAfter: Date;
}

export interface WorkloadCertificate extends SignedCertificate {
  identity: SpiffeId;
  /** PKCS#8 PEM for node:tls `key`. */
  privateKeyPem: string;
}

/** A TLS server certificate for the control plane itself (DNS and IP SANs, no SPIFFE ID). */
export interface ServingCertificate extends SignedCertificate {
  /** PKCS#8 PEM for node:tls `key`. */
  privateKeyPem: string;
}

export class CertificateAuthority {
  readonly #trustDomain: string;
  readonly #now: () => Date;
  readonly #maxTtlSeconds: number;
  readonly #loaded: LoadedCa;

  private constructor(loaded: LoadedCa, opts: CertificateAuthorityOptions) {
    this.#loaded = loaded;
    this.#trustDomain = opts.trustDomain;
    this.#now = opts.now ?? (() => new Date());
    this.#maxTtlSeconds = opts.maxTtlSeconds ?? DEFAULT_MAX_WORKLOAD_TTL_SECONDS;
  }

  /**
   * Loads the CA in `stateDir` (Istio layout), or creates a self-signed root there (O=<trust
   * domain>, 10 years, as Istio's self-signed CA) so that a restart keeps the same root.
   */
  static async loadOrCreate(
    stateDir: string,
    opts: CertificateAuthorityOptions,
  ): Promise<CertificateAuthority> {
    parseTrustDomain(opts.trustDomain);
    const existing = await readStateFolder(stateDir);
    if (existing) return CertificateAuthority.fromPem(existing, opts, sourcesIn(stateDir));

    const material = await CertificateAuthority.generateSelfSigned(opts);
    await writeCaFolder(stateDir, material);
    return CertificateAuthority.fromPem(material, opts, sourcesIn(stateDir));
  }

  /**
   * A new self-signed root (O=<trust domain>, 10 years, as Istio's self-signed CA), not stored
   * anywhere: the caller keeps it (a state folder, Kubernetes' istio-ca-secret).
   */
  static async generateSelfSigned(opts: CertificateAuthorityOptions): Promise<Required<CaMaterial>> {
    parseTrustDomain(opts.trustDomain);
    const now = (opts.now ?? (() => new Date()))();
    const pair = await generateP256KeyPair();
    const key = await signingKeyFromPair(pair);
    const root = await createRootCertificate(key, {
      spki: key.spki,
      subject: `O=${opts.trustDomain}`,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(now.getTime() + SELF_SIGNED_ROOT_TTL_SECONDS * 1000),
    });
    const rootPem = encodePem("CERTIFICATE", root.rawData);
    return {
      caCertPem: rootPem,
      caKeyPem: await exportPrivateKeyPem(pair.privateKey),
      rootCertPem: rootPem,
      // "ca-cert up to root": for a self-signed root that is the root alone.
      certChainPem: rootPem,
    };
  }

  /** An operator's intermediate CA in Istio's cacerts layout; all four files are required. */
  static async fromPluggedFolder(
    dir: string,
    opts: CertificateAuthorityOptions,
  ): Promise<CertificateAuthority> {
    parseTrustDomain(opts.trustDomain);
    return CertificateAuthority.fromPem(await readPluggedFolder(dir), opts, sourcesIn(dir));
  }

  /** CA material already in memory (a Kubernetes secret, a test hierarchy). */
  static async fromPem(
    material: CaMaterial,
    opts: CertificateAuthorityOptions,
    sources: CaSources = DEFAULT_SOURCES,
  ): Promise<CertificateAuthority> {
    parseTrustDomain(opts.trustDomain);
    const now = (opts.now ?? (() => new Date()))();
    return new CertificateAuthority(await loadCaMaterial(material, sources, now), opts);
  }

  get trustDomain(): string {
    return this.#trustDomain;
  }

  /** The root this CA's certificates chain to. */
  get rootCertPem(): string {
    return this.#loaded.anchorPem;
  }

  /** Every root in root-cert.pem: what workloads should trust (more than one during rotation). */
  get rootCertsPem(): string[] {
    return [...this.#loaded.rootsPem];
  }

  /** What the CA appends after each leaf: its signing certificate, intermediates, root. */
  get caChainPem(): string[] {
    return [...this.#loaded.chainTailPem];
  }

  /** Validates `csrPem` for this trust domain and issues a workload leaf for it. */
  async sign(csrPem: string, opts: SignOptions = {}): Promise<SignedCertificate> {
    const ttlSeconds = opts.ttlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
      throw new AmbientError(ErrorCode.CSR_INVALID, `requested TTL ${ttlSeconds}s is not a positive number`);
    }
    if (ttlSeconds > this.#maxTtlSeconds) {
      throw new AmbientError(
        ErrorCode.CSR_INVALID,
        `requested TTL ${ttlSeconds}s exceeds this CA's maximum of ${this.#maxTtlSeconds}s`,
      );
    }
    const csr = await validateWorkloadCsr(csrPem, this.#trustDomain);
    if (opts.identity && !csr.identity.equals(opts.identity)) {
      throw new AmbientError(
        ErrorCode.CSR_FORBIDDEN,
        `CSR asks for ${csr.identity} but the request may only obtain ${opts.identity}`,
        { details: { requested: csr.identity.toString(), allowed: opts.identity.toString() } },
      );
    }

    const now = this.#now();
    const cap = this.#loaded.notAfterCap;
    if (now.getTime() >= cap.getTime()) {
      throw new AmbientError(
        ErrorCode.CERT_EXPIRED,
        `cannot issue: the CA chain expired at ${cap.toISOString()} (now ${now.toISOString()}); rotate the CA`,
      );
    }
    const leaf = issueLeafCertificate(this.#loaded.issuer, {
      spki: csr.spki,
      uris: [csr.identity.toString()],
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      // A leaf never outlives its issuers: peers would reject it at the issuer's expiry anyway.
      notAfter: new Date(Math.min(now.getTime() + ttlSeconds * 1000, cap.getTime())),
    });
    return {
      certChainPem: [encodePem("CERTIFICATE", leaf.der), ...this.#loaded.chainTailPem],
      serial: leaf.serial,
      notAfter: leaf.notAfter,
    };
  }

  /**
   * A fresh key and a serving certificate for the control plane's own gRPC port, chained to the
   * mesh root so that proxies verify it with the root they already hold (istiod's DNS certificate).
   */
  async issueServingCertificate(opts: {
    dnsNames: readonly string[];
    ipAddresses?: readonly string[];
    ttlSeconds: number;
  }): Promise<ServingCertificate> {
    const ips = (opts.ipAddresses ?? []).map((text) => {
      const bytes = parseIp(text);
      if (!bytes)
        throw new AmbientError(ErrorCode.CONFIG_INVALID, `serving certificate: "${text}" is not an IP`);
      return bytes;
    });
    if (opts.dnsNames.length === 0 && ips.length === 0) {
      throw new AmbientError(ErrorCode.CONFIG_INVALID, "serving certificate: no DNS name or IP to certify");
    }
    const pair = await generateP256KeyPair();
    const key = await signingKeyFromPair(pair);
    const now = this.#now();
    const cap = this.#loaded.notAfterCap;
    const leaf = issueLeafCertificate(this.#loaded.issuer, {
      spki: key.spki,
      uris: [],
      dnsNames: opts.dnsNames,
      ipAddresses: ips,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(Math.min(now.getTime() + opts.ttlSeconds * 1000, cap.getTime())),
    });
    return {
      certChainPem: [encodePem("CERTIFICATE", leaf.der), ...this.#loaded.chainTailPem],
      serial: leaf.serial,
      notAfter: leaf.notAfter,
      privateKeyPem: await exportPrivateKeyPem(pair.privateKey),
    };
  }

  /** Creates a key and CSR for `id` and signs it: for tests and in-process meshes. */
  async issueWorkloadCertificate(id: SpiffeId, ttlSeconds?: number): Promise<WorkloadCertificate> {
    const { csrPem, privateKeyPem } = await createWorkloadCsr(id);
    const signed = await this.sign(
      csrPem,
      ttlSeconds === undefined ? { identity: id } : { ttlSeconds, identity: id },
    );
    return { ...signed, identity: id, privateKeyPem };
  }
}
