// One HTTP/1.1 exchange with the node agent over its unix socket (node:http with socketPath, no
// keep-alive: the plugin exits right after). The deadline covers connect, request and the whole
// answer, so a wedged agent cannot hold a pod sandbox hostage.

import { request } from "node:http";

/** Enough for {"ok":true,...} or an error message; a larger answer is not the agent protocol. */
const MAX_ANSWER_BYTES = 64 * 1024;

export type AgentFailure = "unreachable" | "timeout" | "protocol";

export class AgentCallError extends Error {
  override readonly name = "AgentCallError";
  constructor(
    readonly kind: AgentFailure,
    message: string,
    /** The socket error's code (ENOENT, ECONNREFUSED...) when there was one. */
    readonly errno?: string,
  ) {
    super(message);
  }
}

/** Matched by name, not instanceof: tests and the installed copy may load two copies of this module. */
export function isAgentCallError(err: unknown): err is AgentCallError {
  return (err as { name?: unknown })?.name === "AgentCallError";
}

export interface AgentAnswer {
  status: number;
  body: Record<string, unknown>;
}

export function callAgent(
  socketPath: string,
  method: "GET" | "POST",
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<AgentAnswer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: AgentCallError | undefined, answer?: AgentAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(answer!);
    };
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({
      socketPath,
      method,
      path,
      agent: false,
      headers: payload
        ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
        : {},
    });
    const timer = setTimeout(
      () =>
        finish(
          new AgentCallError(
            "timeout",
            `no answer from the node agent at ${socketPath} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      finish(
        new AgentCallError(
          "unreachable",
          `cannot reach the node agent at ${socketPath}: ${err.message}`,
          err.code,
        ),
      );
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          finish(
            new AgentCallError(
              "protocol",
              `the node agent at ${socketPath} answered more than ${MAX_ANSWER_BYTES} bytes`,
            ),
          );
        } else chunks.push(chunk);
      });
      res.on("error", (err) => {
        finish(
          new AgentCallError(
            "unreachable",
            `the node agent at ${socketPath} broke off its answer: ${err.message}`,
          ),
        );
      });
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          finish(
            new AgentCallError(
              "protocol",
              `the node agent at ${socketPath} answered HTTP ${res.statusCode} with a body that is not a JSON object: ${JSON.stringify(text.slice(0, 200))}`,
            ),
          );
          return;
        }
        finish(undefined, { status: res.statusCode ?? 0, body: parsed as Record<string, unknown> });
      });
    });
    req.end(payload);
  });
}
