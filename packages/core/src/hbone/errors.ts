// HBONE failures with stable codes. The shared errors module stays closed to per-feature codes, so
// they live here; callers match on `code` (walking `cause`) as everywhere else, and HTTP answers
// carry `details.status` so one classifier can map them to response flags.

import { AmbientError, type AmbientErrorOptions } from "../errors/errors.js";

export const HboneErrorCode = {
  /** The TLS handshake failed for a reason other than trust (protocol version, ALPN, not TLS). */
  TLS: "AMB_HBONE_TLS",
  /** The server's SPIFFE ID is valid but not one the caller expected for that destination. */
  IDENTITY_MISMATCH: "AMB_HBONE_IDENTITY_MISMATCH",
  /** The peer's certificate is not trusted: wrong CA, expired, no SPIFFE ID, other trust domain. */
  PEER_UNTRUSTED: "AMB_HBONE_PEER_UNTRUSTED",
  /** The peer refused our certificate (a TLS alert after our handshake finished). */
  CERT_REJECTED: "AMB_HBONE_CERT_REJECTED",
  /** The CONNECT was answered with a status other than 200; `details.status` holds it. */
  CONNECT_REFUSED: "AMB_HBONE_CONNECT_REFUSED",
  /** The TCP connection could not be made or the HTTP/2 session broke before an answer. */
  CONNECT_FAILED: "AMB_HBONE_CONNECT_FAILED",
  /** The stream was reset (RST_STREAM) or its session went away; `details.rstCode` when known. */
  STREAM_RESET: "AMB_HBONE_STREAM_RESET",
  /** Connect deadline passed, or a keepalive PING went unanswered. */
  TIMEOUT: "AMB_HBONE_TIMEOUT",
  /** The caller's AbortSignal fired. */
  ABORTED: "AMB_HBONE_ABORTED",
  /** A bad argument from the caller (no expected identities, malformed destination). */
  INVALID_REQUEST: "AMB_HBONE_INVALID_REQUEST",
  // What the server does to clients that hold or abuse its port (see server-guard.ts).
  /** The client did not finish the TLS handshake within the bound. */
  HANDSHAKE_TIMEOUT: "AMB_HBONE_HANDSHAKE_TIMEOUT",
  /** The session sent no CONNECT within the bound after its handshake, or had none open for too long. */
  IDLE: "AMB_HBONE_IDLE",
  /** The client broke HTTP/2 (bad preface, CONTINUATION flood, invalid frames): Node ended the session. */
  PROTOCOL: "AMB_HBONE_PROTOCOL",
  /** Too many streams reset by the client before their answer, or refused: rapid reset (CVE-2023-44487). */
  RESET_FLOOD: "AMB_HBONE_RESET_FLOOD",
  /** A stream past the session's concurrency limit, refused on its own with REFUSED_STREAM. */
  STREAM_REFUSED: "AMB_HBONE_STREAM_REFUSED",
  /** Streams Node reset before they reached us: a header block past SETTINGS_MAX_HEADER_LIST_SIZE. */
  HEADERS_REFUSED: "AMB_HBONE_HEADERS_REFUSED",
} as const;

export type HboneErrorCodeValue = (typeof HboneErrorCode)[keyof typeof HboneErrorCode];

export function hboneError(
  code: HboneErrorCodeValue,
  message: string,
  options: AmbientErrorOptions = {},
): AmbientError {
  return new AmbientError(code, message, options);
}

/** True for our own codes, so a mapper does not wrap an error that is already classified. */
export function isHboneError(err: unknown): err is AmbientError {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("AMB_HBONE_");
}

export type LogLevel = "debug" | "info" | "warn";

/**
 * How loudly the server logs each way a client's connection or stream ends badly: the one table for
 * the HBONE server (one line per connection or session, never per frame). Handshake failures are
 * debug: scanners and plaintext clients are routine on a mesh port. An authenticated peer that breaks
 * HTTP/2 is worth an info line; a reset flood, an attack or a badly broken client, a warning.
 */
const SERVER_LOG_LEVEL: Readonly<Record<string, LogLevel>> = {
  [HboneErrorCode.TLS]: "debug",
  [HboneErrorCode.HANDSHAKE_TIMEOUT]: "debug",
  [HboneErrorCode.CONNECT_FAILED]: "debug",
  [HboneErrorCode.PEER_UNTRUSTED]: "info",
  [HboneErrorCode.IDLE]: "info",
  [HboneErrorCode.TIMEOUT]: "info",
  [HboneErrorCode.PROTOCOL]: "info",
  [HboneErrorCode.STREAM_REFUSED]: "info",
  [HboneErrorCode.HEADERS_REFUSED]: "info",
  [HboneErrorCode.RESET_FLOOD]: "warn",
};

export function serverLogLevel(code: string): LogLevel {
  return SERVER_LOG_LEVEL[code] ?? "info";
}
