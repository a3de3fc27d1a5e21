// Turns Node's TLS and socket errors into HBONE errors whose messages name the problem and the peer.
// Node reports OpenSSL's verify result as a bare code (CERT_HAS_EXPIRED) and a received TLS alert as
// ERR_SSL_<...>_ALERT_<...>; an operator needs "server certificate for 10.0.0.2:15008 has expired".

import type { AmbientError } from "../errors/errors.js";
import { HboneErrorCode, type HboneErrorCodeValue, hboneError, isHboneError } from "./errors.js";

type Problem = { code: HboneErrorCodeValue; text: string };

/** OpenSSL X509 verify results, as Node names them, phrased to follow "<whose> certificate". */
const VERIFY_RESULTS: Record<string, string> = {
  CERT_HAS_EXPIRED: "has expired",
  CERT_NOT_YET_VALID: "is not yet valid (check clocks)",
  ERROR_IN_CERT_NOT_BEFORE_FIELD: "has a malformed notBefore",
  ERROR_IN_CERT_NOT_AFTER_FIELD: "has a malformed notAfter",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "is not signed by the mesh root",
  UNABLE_TO_GET_ISSUER_CERT: "is not signed by the mesh root",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "is not signed by the mesh root",
  SELF_SIGNED_CERT_IN_CHAIN: "chains to a root that is not the mesh root",
  DEPTH_ZERO_SELF_SIGNED_CERT: "is self-signed, not signed by the mesh root",
  CERT_SIGNATURE_FAILURE: "has a signature that does not verify against its issuer",
  CERT_UNTRUSTED: "is not trusted by the mesh roots",
  CERT_REJECTED: "is rejected by the mesh roots",
  INVALID_CA: "was issued by a certificate that is not a CA",
  INVALID_PURPOSE: "is not valid for TLS client/server use (extended key usage)",
  CERT_CHAIN_TOO_LONG: "has a chain that is too long",
  PATH_LENGTH_EXCEEDED: "has a chain longer than its CA allows",
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: "has an issuer whose public key cannot be decoded",
  ERR_TLS_CERT_ALTNAME_INVALID: "does not carry the expected identity",
};

/** Alerts the peer sent us: it refused our certificate, or it is not speaking HBONE's TLS. */
function alertProblem(code: string): Problem | undefined {
  const m = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code);
  if (!m) return undefined;
  const alert = m[1]!.toLowerCase().replaceAll("_", " ");
  switch (m[1]) {
    case "CERTIFICATE_REQUIRED":
      return { code: HboneErrorCode.CERT_REJECTED, text: "requires a client certificate" };
    case "UNKNOWN_CA":
    case "BAD_CERTIFICATE":
    case "CERTIFICATE_EXPIRED":
    case "CERTIFICATE_REVOKED":
    case "CERTIFICATE_UNKNOWN":
    case "UNSUPPORTED_CERTIFICATE":
    case "DECRYPT_ERROR":
    case "ACCESS_DENIED":
      return { code: HboneErrorCode.CERT_REJECTED, text: `rejected our certificate (TLS alert: ${alert})` };
    case "PROTOCOL_VERSION":
      return { code: HboneErrorCode.TLS, text: "does not speak TLS 1.3 (TLS alert: protocol version)" };
    case "NO_APPLICATION_PROTOCOL":
      return {
        code: HboneErrorCode.TLS,
        text: "does not offer ALPN h2 (TLS alert: no application protocol)",
      };
    default:
      return { code: HboneErrorCode.TLS, text: `sent TLS alert: ${alert}` };
  }
}

function localProblem(code: string): Problem | undefined {
  switch (code) {
    case "ERR_SSL_WRONG_VERSION_NUMBER":
    case "ERR_SSL_PACKET_LENGTH_TOO_LONG":
    case "ERR_SSL_HTTP_REQUEST":
    case "ERR_SSL_RECORD_LAYER_FAILURE":
      return { code: HboneErrorCode.TLS, text: "is not speaking TLS" };
    case "ERR_SSL_UNEXPECTED_MESSAGE":
    case "ERR_SSL_UNEXPECTED_RECORD":
      return { code: HboneErrorCode.TLS, text: "sent TLS records out of order (not a TLS client)" };
    case "ERR_SSL_UNSUPPORTED_PROTOCOL":
    case "ERR_SSL_NO_PROTOCOLS_AVAILABLE":
    case "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION":
      return { code: HboneErrorCode.TLS, text: "does not speak TLS 1.3" };
    case "ERR_TLS_HANDSHAKE_TIMEOUT":
      return { code: HboneErrorCode.HANDSHAKE_TIMEOUT, text: "did not finish the TLS handshake in time" };
    case "ECONNREFUSED":
      return { code: HboneErrorCode.CONNECT_FAILED, text: "refused the TCP connection" };
    case "ECONNRESET":
    case "EPIPE":
      return { code: HboneErrorCode.CONNECT_FAILED, text: "reset the connection" };
    case "ETIMEDOUT":
      return { code: HboneErrorCode.TIMEOUT, text: "did not answer (TCP timeout)" };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return { code: HboneErrorCode.CONNECT_FAILED, text: "is unreachable" };
    case "EADDRNOTAVAIL":
      return { code: HboneErrorCode.CONNECT_FAILED, text: "cannot be reached from this source address" };
    default:
      return undefined;
  }
}

/**
 * An error seen by the HBONE client while connecting to the server at `destination`, as a typed
 * HBONE error. Errors we built ourselves (identity checks) pass through unchanged.
 */
export function clientConnectError(err: unknown, destination: string): AmbientError {
  if (isHboneError(err)) return err;
  const code = String((err as { code?: unknown } | null)?.code ?? "");
  const message = (err as Error | null)?.message ?? String(err);
  const details = { destination, tlsCode: code || undefined };
  const verify = VERIFY_RESULTS[code];
  if (verify) {
    return hboneError(HboneErrorCode.PEER_UNTRUSTED, `server certificate for ${destination} ${verify}`, {
      cause: err,
      details,
    });
  }
  const problem = alertProblem(code) ?? localProblem(code);
  if (problem) {
    return hboneError(problem.code, `server ${destination} ${problem.text}`, { cause: err, details });
  }
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) {
    return hboneError(HboneErrorCode.TLS, `TLS with ${destination} failed: ${message}`, {
      cause: err,
      details,
    });
  }
  return hboneError(HboneErrorCode.CONNECT_FAILED, `HBONE connection to ${destination} failed: ${message}`, {
    cause: err,
    details,
  });
}

/** OpenSSL's verify result `code` as a predicate for "<whose> certificate ...". */
export function describeVerifyError(code: string): string {
  const text = VERIFY_RESULTS[code];
  return text ? `${text} (${code})` : `failed verification (${code})`;
}

/** Why the server's handshake with a client failed (a `tlsClientError`): our code and a log text. */
export function describeClientTlsError(err: unknown): Problem {
  const code = String((err as { code?: unknown } | null)?.code ?? "");
  const message = (err as Error | null)?.message ?? String(err);
  const problem = alertProblem(code) ?? localProblem(code);
  if (problem) return { code: problem.code, text: `client ${problem.text}` };
  return { code: HboneErrorCode.TLS, text: `${message.split("\n")[0]}${code ? ` (${code})` : ""}` };
}
