// Why the control plane's gRPC listener closed a connection before grpc-js saw it, with stable codes
// and the one table of their log levels. Scanners and confused clients are routine on a port every
// proxy can reach, so one debug line per connection; a client that stalls is worth an info line.

export const ListenerErrorCode = {
  /** The first bytes were not the HTTP/2 preface (garbage, TLS to the plaintext port). */
  NOT_HTTP2: "AMB_CP_NOT_HTTP2",
  /** An HTTP/1 request: answered 505 with the protocol the port speaks. */
  HTTP1: "AMB_CP_HTTP1",
  /** No complete preface within PREFACE_TIMEOUT_MS. */
  PREFACE_TIMEOUT: "AMB_CP_PREFACE_TIMEOUT",
} as const;

const LOG_LEVEL: Readonly<Record<string, "debug" | "info" | "warn">> = {
  [ListenerErrorCode.NOT_HTTP2]: "debug",
  [ListenerErrorCode.HTTP1]: "debug",
  [ListenerErrorCode.PREFACE_TIMEOUT]: "info",
};

export function listenerLogLevel(code: string): "debug" | "info" | "warn" {
  return LOG_LEVEL[code] ?? "info";
}
