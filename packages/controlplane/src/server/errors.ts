// Why the control plane's gRPC listener closed a connection before grpc-js saw it, with stable codes
// and the one table of their log levels. Scanners and confused clients are routine on a port every
// proxy can reach, so one debug line per connection; a client that stalls, or a TLS handshake that
// fails (a proxy with the wrong root, an expired serving certificate), is worth an info line.

export const ListenerErrorCode = {
  /** The first bytes were not the HTTP/2 preface (garbage, TLS to the plaintext port). */
  NOT_HTTP2: "AMB_CP_NOT_HTTP2",
  /** An HTTP/1 request: answered 505 with the protocol the port speaks. */
  HTTP1: "AMB_CP_HTTP1",
  /** No complete preface within PREFACE_TIMEOUT_MS. */
  PREFACE_TIMEOUT: "AMB_CP_PREFACE_TIMEOUT",
  /** The TLS port got bytes that do not open a TLS handshake (plaintext gRPC or HTTP/1). */
  NOT_TLS: "AMB_CP_NOT_TLS",
  /** The TLS handshake failed, or agreed on no ALPN `h2`. */
  TLS_HANDSHAKE: "AMB_CP_TLS_HANDSHAKE",
  /** The TLS handshake did not finish within PREFACE_TIMEOUT_MS. */
  TLS_TIMEOUT: "AMB_CP_TLS_TIMEOUT",
} as const;

const LOG_LEVEL: Readonly<Record<string, "debug" | "info" | "warn">> = {
  [ListenerErrorCode.NOT_HTTP2]: "debug",
  [ListenerErrorCode.HTTP1]: "debug",
  [ListenerErrorCode.PREFACE_TIMEOUT]: "info",
  [ListenerErrorCode.NOT_TLS]: "debug",
  [ListenerErrorCode.TLS_HANDSHAKE]: "info",
  [ListenerErrorCode.TLS_TIMEOUT]: "info",
};

export function listenerLogLevel(code: string): "debug" | "info" | "warn" {
  return LOG_LEVEL[code] ?? "info";
}

/** Why a connection is closed, and what (if anything) to answer first. */
export interface Refusal {
  code: string;
  reason: string;
  answer?: string;
}

/** A method token and a space: an HTTP/1 request line (RFC 9112 §3). */
const HTTP1_REQUEST = /^[A-Z]{3,10} /;

/** An HTTP/1 client gets a plain-text answer naming what the port speaks; anything else is closed. */
export function http1Refusal(head: Buffer, code: string, status: string, body: string): Refusal | undefined {
  const text = head.toString("latin1");
  if (!HTTP1_REQUEST.test(text)) return undefined;
  return {
    code,
    reason: `an HTTP/1 request (${JSON.stringify(text.split("\r\n")[0]!.slice(0, 60))})`,
    answer: `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  };
}
