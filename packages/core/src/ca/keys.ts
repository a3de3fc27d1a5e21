// Key generation and import for the CA and workloads. Keys we create are ECDSA P-256 signing with
// SHA-256 (what Istio and ztunnel default to); a plugged CA may bring P-384 or RSA, so import maps
// each key type to the signature algorithm Go's crypto/x509 would pick for it.

import { createPrivateKey, createPublicKey, KeyObject, webcrypto } from "node:crypto";
import { derNull, oid, sequence } from "./der.js";
import { encodePem } from "./pem.js";

export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type CryptoKey = webcrypto.CryptoKey;

export const EC_P256_KEYGEN: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
export const ECDSA_SHA256: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

// X.509 AlgorithmIdentifiers (RFC 5758 §3.2, RFC 4055 §5): ECDSA omits parameters, RSA has NULL.
const ECDSA_WITH_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));
const ECDSA_WITH_SHA384 = sequence(oid("1.2.840.10045.4.3.3"));
const SHA256_WITH_RSA = sequence(oid("1.2.840.113549.1.1.11"), derNull());

/** A CA private key in both forms the CA uses, with the signature algorithm it signs with. */
export interface SigningKey {
  /** For @peculiar/x509 (CA certificates). */
  key: CryptoKey;
  algorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
  /** For node:crypto sign (workload leaves, the hot path). */
  keyObject: KeyObject;
  hash: "sha256" | "sha384";
  /** DER AlgorithmIdentifier matching `hash` and the key type. */
  signatureAlgorithm: Buffer;
  /** SubjectPublicKeyInfo DER of the matching public key, to compare against a certificate. */
  spki: Buffer;
  /** Short description for messages, e.g. "EC P-256". */
  description: string;
}

export async function generateP256KeyPair(): Promise<CryptoKeyPair> {
  // Extractable: the workload key must be written as PKCS#8 for node:tls and for ca-key.pem.
  return webcrypto.subtle.generateKey(EC_P256_KEYGEN, true, ["sign", "verify"]);
}

/** PKCS#8 "PRIVATE KEY" PEM, the form node:tls, Envoy and ztunnel all load. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return encodePem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", key));
}

export async function exportSpki(key: CryptoKey): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.exportKey("spki", key));
}

export async function signingKeyFromPair(pair: CryptoKeyPair): Promise<SigningKey> {
  return {
    key: pair.privateKey,
    algorithm: ECDSA_SHA256,
    keyObject: KeyObject.from(pair.privateKey),
    hash: "sha256",
    signatureAlgorithm: ECDSA_WITH_SHA256,
    spki: await exportSpki(pair.publicKey),
    description: "EC P-256",
  };
}

/**
 * Imports a PEM private key in any form openssl writes (PKCS#8, SEC1 "EC PRIVATE KEY", PKCS#1
 * "RSA PRIVATE KEY"). Throws a plain Error naming the unsupported type; the caller adds the file.
 */
export async function importSigningKey(pem: string): Promise<SigningKey> {
  let obj: KeyObject;
  try {
    obj = createPrivateKey({ key: pem, format: "pem" });
  } catch (err) {
    const reason = (err as Error).message;
    if (/passphrase|encrypted/i.test(reason) || pem.includes("ENCRYPTED")) {
      throw new Error("private key is encrypted; the CA needs an unencrypted key");
    }
    throw new Error(`not a readable PEM private key (${reason})`);
  }
  const pkcs8 = obj.export({ format: "der", type: "pkcs8" });
  const spki = createPublicKey(obj).export({ format: "der", type: "spki" });
  const type = obj.asymmetricKeyType;
  if (type === "ec") {
    const curve = obj.asymmetricKeyDetails?.namedCurve;
    const named = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!named)
      throw new Error(`EC key on curve ${curve ?? "unknown"} is not supported (use P-256 or P-384)`);
    const key = await webcrypto.subtle.importKey(
      "pkcs8",
      pkcs8,
      { name: "ECDSA", namedCurve: named },
      false,
      ["sign"],
    );
    const p256 = named === "P-256";
    return {
      key,
      algorithm: { name: "ECDSA", hash: p256 ? "SHA-256" : "SHA-384" },
      keyObject: obj,
      hash: p256 ? "sha256" : "sha384",
      signatureAlgorithm: p256 ? ECDSA_WITH_SHA256 : ECDSA_WITH_SHA384,
      spki,
      description: `EC ${named}`,
    };
  }
  if (type === "rsa") {
    const bits = obj.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`RSA key of ${bits} bits is too small (at least 2048)`);
    const algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const key = await webcrypto.subtle.importKey("pkcs8", pkcs8, algorithm, false, ["sign"]);
    return {
      key,
      algorithm,
      keyObject: obj,
      hash: "sha256",
      signatureAlgorithm: SHA256_WITH_RSA,
      spki,
      description: `RSA ${bits}`,
    };
  }
  throw new Error(`${type ?? "unknown"} keys are not supported (use EC P-256, EC P-384 or RSA)`);
}

/** "EC P-256", "RSA 2048", ... for a public key, used in messages about what was found. */
export function describePublicKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? "unknown";
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const names: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };
    return `EC ${curve ? (names[curve] ?? curve) : "unknown curve"}`;
  }
  if (type === "rsa") return `RSA ${key.asymmetricKeyDetails?.modulusLength ?? "?"}`;
  return type.toUpperCase();
}

export function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}
