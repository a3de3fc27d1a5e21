// TLS origination (DestinationRule `tls.mode: SIMPLE | MUTUAL`): the waypoint opens TLS over the
// upstream byte stream (plain TCP to an external service, or inside the HBONE tunnel), so an app
// that speaks plain HTTP reaches an HTTPS service, as Istio's egress pattern does. The server's
// certificate is verified against `caCertificates` (else Node's bundled roots) and against the SNI
// name, or against `subjectAltNames` when the rule lists them; `insecureSkipVerify` turns both off.

import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { checkServerIdentity, connect, type PeerCertificate, type TLSSocket } from "node:tls";
import { AmbientError, errorMessage, WaypointErrorCode } from "@ambient/core";

export interface UpstreamTls {
  mode: "SIMPLE" | "MUTUAL";
  /** SNI, and the name the certificate must carry unless `subjectAltNames` is set. */
  servername: string;
  subjectAltNames: string[];
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  credentialName?: string;
  insecureSkipVerify: boolean;
}

function tlsError(message: string, cause?: unknown): AmbientError {
  return new AmbientError(WaypointErrorCode.UPSTREAM_CONNECT, message, cause === undefined ? {} : { cause });
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw tlsError(`cannot read the DestinationRule's ${what} ${path}: ${errorMessage(err)}`, err);
  }
}

/** `subjectaltname` as Node gives it ("DNS:a, URI:spiffe://x, IP Address:1.2.3.4") → the values. */
function altNames(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .map((entry) => entry.slice(entry.indexOf(":") + 1))
    .filter((v) => v !== "");
}

/**
 * TLS over `stream` to the destination named `tls.servername`, the handshake bounded by
 * `timeoutMs`. Resolves once the server is verified; every failure is a 503 UF naming the server.
 */
export async function originateTls(
  stream: Duplex,
  tls: UpstreamTls,
  timeoutMs: number,
  alpn: string[] | undefined,
): Promise<TLSSocket> {
  const fail = (message: string, cause?: unknown): never => {
    stream.destroy();
    throw tlsError(`TLS origination to ${tls.servername}: ${message}`, cause);
  };
  // A Kubernetes Secret would have to be fetched and watched; fail closed rather than connect without it.
  if (tls.credentialName) {
    fail(
      `credentialName ${tls.credentialName} is not supported by the waypoint yet; give caCertificates (and for MUTUAL clientCertificate and privateKey) as files`,
    );
  }
  if (tls.mode === "MUTUAL" && (!tls.clientCertificate || !tls.privateKey)) {
    fail("mode MUTUAL needs clientCertificate and privateKey");
  }
  const [ca, cert, key] = await Promise.all([
    tls.caCertificates ? readPem(tls.caCertificates, "caCertificates") : undefined,
    tls.mode === "MUTUAL" ? readPem(tls.clientCertificate!, "clientCertificate") : undefined,
    tls.mode === "MUTUAL" ? readPem(tls.privateKey!, "privateKey") : undefined,
  ]).catch((err) => {
    stream.destroy();
    throw err;
  });
  const sans = tls.subjectAltNames;
  const socket = connect({
    socket: stream,
    // SNI carries names only (RFC 6066); an IP destination is checked as an IP below.
    ...(isIP(tls.servername) ? {} : { servername: tls.servername }),
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
    rejectUnauthorized: !tls.insecureSkipVerify,
    checkServerIdentity: (_host, peer) => {
      if (sans.length === 0) return checkServerIdentity(tls.servername, peer);
      const names = altNames(peer);
      return sans.some((n) => names.includes(n))
        ? undefined
        : new Error(`the certificate names ${names.join(", ") || "nothing"}, none of ${sans.join(", ")}`);
    },
  });
  return new Promise<TLSSocket>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(tlsError(`TLS origination to ${tls.servername}: no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(tlsError(`TLS origination to ${tls.servername}: ${errorMessage(err)}`, err));
    });
  });
}
