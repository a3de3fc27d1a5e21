// How the node agent's two unix sockets end a connection that does not speak their protocol or stalls:
// stable codes and the one table of their log levels. Both sockets are root-only, so a bad peer is a
// broken or wedged component (an old ztunnel, a stray plugin), never noise: at least a warning.

export const AgentSocketErrorCode = {
  /** ztunnel socket: a line longer than MAX_LINE_BYTES without a newline. */
  LINE_TOO_LONG: "AMB_AGENT_LINE_TOO_LONG",
  /** ztunnel socket: a line that is not a message of the in-pod protocol. */
  BAD_MESSAGE: "AMB_AGENT_BAD_MESSAGE",
  /** ztunnel socket: no ack within the ack timeout; the connection is closed, not waited on again. */
  ACK_TIMEOUT: "AMB_AGENT_ACK_TIMEOUT",
  /** CNI socket: bytes that are not an HTTP/1.1 request, or a head past Node's 16 KiB limit. */
  BAD_HTTP: "AMB_AGENT_BAD_HTTP",
  /** CNI socket: no complete request within the request timeout. */
  REQUEST_TIMEOUT: "AMB_AGENT_REQUEST_TIMEOUT",
} as const;

const LOG_LEVEL: Readonly<Record<string, "info" | "warn" | "error">> = {
  [AgentSocketErrorCode.LINE_TOO_LONG]: "warn",
  [AgentSocketErrorCode.BAD_MESSAGE]: "warn",
  [AgentSocketErrorCode.ACK_TIMEOUT]: "warn",
  [AgentSocketErrorCode.BAD_HTTP]: "warn",
  [AgentSocketErrorCode.REQUEST_TIMEOUT]: "warn",
};

export function agentSocketLogLevel(code: string): "info" | "warn" | "error" {
  return LOG_LEVEL[code] ?? "warn";
}
