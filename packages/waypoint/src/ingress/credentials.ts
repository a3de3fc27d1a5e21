// The certificates an ingress gateway terminates TLS with: kubernetes.io/tls Secrets the control
// plane sent (only those a gateway names, and in Kubernetes mode only to proxies of the Secret's
// namespace). Each becomes a SecureContext once per config update. A Secret that cannot be used
// (no tls.crt/tls.key, unparsable PEM, a key that does not belong to the certificate) is reported
// once with what is wrong and has no context: its servers refuse handshakes rather than serve
// another certificate. An expired or not-yet-valid certificate is served (clients decide, as with
// Envoy) but said loudly.

import { X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import type { L7Resource, Logger } from "@ambient/core";

export interface Credential {
  context: SecureContext;
  /** The leaf's notAfter, for the config dump. */
  notAfter: string;
  subject: string;
}

export type CredentialResult = { ok: true; credential: Credential } | { ok: false; reason: string };

interface SecretSpec {
  type?: string;
  data?: Record<string, string>;
}

export function loadCredential(
  resource: L7Resource,
  now = Date.now(),
): CredentialResult & { warning?: string } {
  const spec = (resource.spec ?? {}) as SecretSpec;
  const data = spec.data ?? {};
  // kubernetes.io/tls keys, and the generic Secret keys Istio also reads (cert, key).
  const certB64 = data["tls.crt"] ?? data["cert"];
  const keyB64 = data["tls.key"] ?? data["key"];
  if (!certB64 || !keyB64) return { ok: false, reason: "has no tls.crt and tls.key" };
  const cert = Buffer.from(certB64, "base64").toString("utf8");
  const key = Buffer.from(keyB64, "base64").toString("utf8");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    return { ok: false, reason: `tls.crt is not a PEM certificate (${(err as Error).message})` };
  }
  let context: SecureContext;
  try {
    // Throws on a key that does not parse or does not match the certificate.
    context = createSecureContext({ cert, key, minVersion: "TLSv1.2" });
  } catch (err) {
    return { ok: false, reason: `tls.key cannot be used with tls.crt (${(err as Error).message})` };
  }
  const notAfter = Date.parse(leaf.validTo);
  const notBefore = Date.parse(leaf.validFrom);
  const warning =
    notAfter < now
      ? `its certificate expired at ${leaf.validTo}; clients will refuse it`
      : notBefore > now
        ? `its certificate is not valid before ${leaf.validFrom}; clients will refuse it`
        : undefined;
  return {
    ok: true,
    credential: { context, notAfter: leaf.validTo, subject: leaf.subject },
    ...(warning ? { warning } : {}),
  };
}

/** Every Secret resource as a credential, by "<namespace>/<name>"; problems logged once per update. */
export function loadCredentials(resources: Iterable<L7Resource>, logger: Logger): Map<string, Credential> {
  const out = new Map<string, Credential>();
  for (const r of resources) {
    if (r.kind !== "Secret") continue;
    const key = `${r.namespace}/${r.name}`;
    const result = loadCredential(r);
    if (!result.ok) {
      logger.error(
        { secret: key, reason: result.reason },
        `Secret ${key} ${result.reason}; its servers refuse TLS handshakes`,
      );
      continue;
    }
    if (result.warning) logger.warn({ secret: key }, `Secret ${key}: ${result.warning}`);
    out.set(key, result.credential);
  }
  return out;
}
