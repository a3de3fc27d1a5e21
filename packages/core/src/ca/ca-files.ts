// Istio's plugged-CA folder layout (the `cacerts` secret): ca-cert.pem, ca-key.pem, root-cert.pem,
// cert-chain.pem. We read it for plugged CAs and write it for the self-signed root, so an operator
// can move a generated root into a real cacerts secret unchanged, and a restart keeps the root.

import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AmbientError, ErrorCode } from "../errors/errors.js";

export const CA_CERT_FILE = "ca-cert.pem";
export const CA_KEY_FILE = "ca-key.pem";
export const ROOT_CERT_FILE = "root-cert.pem";
export const CERT_CHAIN_FILE = "cert-chain.pem";

/** The four PEM texts of a CA; root and chain are optional only for a self-signed ca-cert. */
export interface CaMaterial {
  caCertPem: string;
  caKeyPem: string;
  rootCertPem?: string;
  certChainPem?: string;
}

/** What to call each piece in error messages: file paths when read from disk. */
export interface CaSources {
  caCert: string;
  caKey: string;
  rootCert: string;
  certChain: string;
}

export const DEFAULT_SOURCES: CaSources = {
  caCert: CA_CERT_FILE,
  caKey: CA_KEY_FILE,
  rootCert: ROOT_CERT_FILE,
  certChain: CERT_CHAIN_FILE,
};

export function sourcesIn(dir: string): CaSources {
  return {
    caCert: join(dir, CA_CERT_FILE),
    caKey: join(dir, CA_KEY_FILE),
    rootCert: join(dir, ROOT_CERT_FILE),
    certChain: join(dir, CERT_CHAIN_FILE),
  };
}

/** Reads a plugged-CA folder; all four files must exist, as Istio requires. */
export async function readPluggedFolder(dir: string): Promise<CaMaterial> {
  const s = sourcesIn(dir);
  const [caCertPem, caKeyPem, rootCertPem, certChainPem] = await Promise.all([
    readRequired(s.caCert),
    readRequired(s.caKey),
    readRequired(s.rootCert),
    readRequired(s.certChain),
  ]);
  return { caCertPem, caKeyPem, rootCertPem, certChainPem };
}

/**
 * Reads a state folder written by `writeCaFolder` (or a plugged one). Undefined when there is no
 * CA yet; an error when only one of certificate and key exists, because generating a new root
 * over a half-present one would silently change the mesh's trust anchor.
 */
export async function readStateFolder(dir: string): Promise<CaMaterial | undefined> {
  const s = sourcesIn(dir);
  const [caCertPem, caKeyPem, rootCertPem, certChainPem] = await Promise.all([
    readOptional(s.caCert),
    readOptional(s.caKey),
    readOptional(s.rootCert),
    readOptional(s.certChain),
  ]);
  if (caCertPem === undefined && caKeyPem === undefined) return undefined;
  if (caCertPem === undefined || caKeyPem === undefined) {
    const [present, missing] = caCertPem === undefined ? [s.caKey, s.caCert] : [s.caCert, s.caKey];
    throw new AmbientError(
      ErrorCode.CA_LOAD_FAILED,
      `${present} exists but ${missing} does not; restore it, or remove both to generate a new root`,
      { details: { file: missing } },
    );
  }
  const material: CaMaterial = { caCertPem, caKeyPem };
  if (rootCertPem !== undefined) material.rootCertPem = rootCertPem;
  if (certChainPem !== undefined) material.certChainPem = certChainPem;
  return material;
}

/** Writes all four files; each atomically (temp + rename), the key with mode 0600, ca-cert.pem last. */
export async function writeCaFolder(dir: string, material: Required<CaMaterial>): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = sourcesIn(dir);
  // The certificate goes last: a crash part-way leaves no ca-cert.pem, which readStateFolder reports
  // rather than pairing a new key with an old certificate.
  await writeAtomic(s.caKey, material.caKeyPem, 0o600);
  await writeAtomic(s.rootCert, material.rootCertPem, 0o644);
  await writeAtomic(s.certChain, material.certChainPem, 0o644);
  await writeAtomic(s.caCert, material.caCertPem, 0o644);
}

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString("hex")}`;
  try {
    await writeFile(tmp, text, { mode, flag: "wx" });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AmbientError(ErrorCode.CA_LOAD_FAILED, `cannot write ${path}: ${(err as Error).message}`, {
      cause: err,
      details: { file: path },
    });
  }
}

async function readRequired(path: string): Promise<string> {
  const text = await readOptional(path);
  if (text === undefined) {
    throw new AmbientError(ErrorCode.CA_LOAD_FAILED, `${path} is missing`, { details: { file: path } });
  }
  return text;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new AmbientError(ErrorCode.CA_LOAD_FAILED, `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
      details: { file: path },
    });
  }
}
