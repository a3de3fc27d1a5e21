// Mutual TLS 1.3 settings for HBONE (DESIGN §4): each side presents its workload chain, OpenSSL
// verifies the peer's chain to the mesh roots, and we check the SPIFFE ID it carries: the client
// against the identities expected for the destination, the server against its trust domain only.

import type { X509Certificate } from "node:crypto";
import type { ConnectionOptions, PeerCertificate, SecureContextOptions, TLSSocket } from "node:tls";
import type { WorkloadCertificate } from "../ca/authority.js";
import { SpiffeId } from "../identity/spiffe.js";
import { HboneErrorCode, hboneError } from "./errors.js";
import { describeVerifyError } from "./tls-errors.js";

/** HBONE is HTTP/2 only: refusing http/1.1 in ALPN keeps a plaintext-style client from ever talking. */
export const HBONE_ALPN = ["h2"];

export interface ClientTlsExtras {
  /** `host:port` of the server, used in error messages only. */
  destination?: string;
}

/** The chain node:tls should present: leaf and intermediates. The peer already has the root. */
export function presentedChain(cert: WorkloadCertificate): string {
  const chain = cert.certChainPem.length > 1 ? cert.certChainPem.slice(0, -1) : cert.certChainPem;
  return chain.join("");
}

/** Key, chain and roots: what `server.setSecureContext` takes, so rotation swaps exactly this. */
export function serverSecureContextOptions(
  cert: WorkloadCertificate,
  rootsPem: readonly string[],
): SecureContextOptions {
  return {
    key: cert.privateKeyPem,
    cert: presentedChain(cert),
    ca: [...rootsPem],
    minVersion: "TLSv1.3",
    maxVersion: "TLSv1.3",
  };
}

/** Options for `tls.connect` (add `socket` or `host`/`port`). */
export function clientTlsOptions(
  source: WorkloadCertificate,
  rootsPem: readonly string[],
  expected: readonly string[],
  extras: ClientTlsExtras = {},
): ConnectionOptions {
  const accepted = new Set(expected);
  const where = extras.destination ? ` at ${extras.destination}` : "";
  return {
    key: source.privateKeyPem,
    cert: presentedChain(source),
    ca: [...rootsPem],
    minVersion: "TLSv1.3",
    maxVersion: "TLSv1.3",
    ALPNProtocols: HBONE_ALPN,
    rejectUnauthorized: true,
    // Workload certificates name no host, so no SNI: the server picks its certificate by the
    // listener that accepted the connection. An empty servername also stops Node deriving one.
    servername: "",
    // Runs only after OpenSSL accepted the chain; replaces Node's hostname check entirely.
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined => {
      const id = spiffeIdFromAltNames(cert.subjectaltname);
      if (typeof id === "string") {
        return hboneError(HboneErrorCode.PEER_UNTRUSTED, `server certificate${where} ${id}`, {
          details: { destination: extras.destination },
        });
      }
      if (accepted.has(id.toString())) return undefined;
      const list = [...accepted].join(", ");
      return hboneError(
        HboneErrorCode.IDENTITY_MISMATCH,
        accepted.size === 0
          ? `server identity ${id}${where} cannot be checked: no expected identities were given`
          : `server identity ${id}${where} is not one of [${list}]`,
        { details: { destination: extras.destination, identity: id.toString(), expected: [...accepted] } },
      );
    },
  };
}

/**
 * The client's SPIFFE ID, read once its handshake finished. Throws PEER_UNTRUSTED naming the problem
 * for a missing certificate, a chain OpenSSL did not verify to our roots (`authorized` false), a
 * certificate without exactly one SPIFFE URI SAN, or an identity from another trust domain. Which
 * identities may connect is authorization's job, not this one's.
 */
export function peerIdentity(
  socket: Pick<TLSSocket, "getPeerX509Certificate" | "authorized" | "authorizationError">,
  trustDomain: string,
): SpiffeId {
  const cert: X509Certificate | undefined = socket.getPeerX509Certificate();
  if (!cert) {
    throw hboneError(HboneErrorCode.PEER_UNTRUSTED, "client presented no certificate");
  }
  if (!socket.authorized) {
    // Node types this as an Error, but stores OpenSSL's verify code as a string.
    const code = String(
      (socket.authorizationError as { code?: string } | undefined)?.code ?? socket.authorizationError,
    );
    throw hboneError(HboneErrorCode.PEER_UNTRUSTED, `client certificate ${describeVerifyError(code)}`, {
      details: { tlsCode: code, serial: cert.serialNumber.toLowerCase() },
    });
  }
  const id = spiffeIdFromAltNames(cert.subjectAltName);
  if (typeof id === "string") {
    throw hboneError(
      HboneErrorCode.PEER_UNTRUSTED,
      `client certificate (serial ${cert.serialNumber.toLowerCase()}) ${id}`,
    );
  }
  if (id.trustDomain !== trustDomain) {
    throw hboneError(
      HboneErrorCode.PEER_UNTRUSTED,
      `client identity ${id} is in trust domain "${id.trustDomain}", not "${trustDomain}"`,
      { details: { identity: id.toString(), trustDomain } },
    );
  }
  return id;
}

/**
 * The one SPIFFE ID in Node's subjectaltname text (`DNS:a, URI:spiffe://td/ns/x/sa/y`), or the
 * reason there is none, phrased to follow "certificate ...". Node JSON-quotes entries that contain
 * separators (CVE-2021-44532), so a quoted value is unquoted before parsing.
 */
export function spiffeIdFromAltNames(altNames: string | undefined): SpiffeId | string {
  if (!altNames) return "has no subject alternative names; expected one SPIFFE URI";
  const uris: string[] = [];
  for (const entry of splitAltNames(altNames)) {
    if (!entry.startsWith("URI:")) continue;
    let value = entry.slice(4);
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // Keep the raw text: it will fail SPIFFE parsing with a message showing it.
      }
    }
    uris.push(value);
  }
  if (uris.length !== 1) {
    return uris.length === 0
      ? `has no URI SAN (SANs: ${altNames.slice(0, 200)}); expected one SPIFFE ID`
      : `has ${uris.length} URI SANs (${uris.join(", ").slice(0, 300)}); expected exactly one SPIFFE ID`;
  }
  const id = SpiffeId.tryParse(uris[0]!);
  return id ?? `has URI SAN ${JSON.stringify(uris[0]!.slice(0, 200))}, which is not a SPIFFE ID`;
}

/** Splits on ", " outside JSON-quoted entries. */
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === "," && text[i + 1] === " ") {
      out.push(text.slice(start, i));
      start = i + 2;
      i++;
    }
  }
  out.push(text.slice(start));
  return out;
}
