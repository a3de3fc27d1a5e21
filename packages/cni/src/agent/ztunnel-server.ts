// The agent's side of the in-pod protocol (see @ambient/core inpod/protocol.ts): ztunnel connects
// to our unix socket; we replay every enrolled pod as an add, then a snapshot marker, then send
// adds and deletes as they happen. Each message waits for ztunnel's ack (with a deadline). More
// than one ztunnel may be connected during a rolling restart: each gets everything. A connection
// that sends something unreadable, or leaves a message unacknowledged past the deadline, is closed:
// a wedged peer must not make every later CNI ADD wait on it.

import { chmod, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import {
  type AgentMessage,
  encodeLine,
  type InpodPod,
  LineReader,
  type Logger,
  parseZtunnelMessage,
} from "@ambient/core";
import { AgentSocketErrorCode, agentSocketLogLevel } from "./errors.js";

/** How long a message waits for ztunnel's ack before the agent gives up on that connection. */
export const ACK_TIMEOUT_MS = 5_000;

export class ZtunnelAckError extends Error {
  override readonly name = "ZtunnelAckError";
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

class ZtunnelConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private failed = false;

  constructor(
    readonly socket: Socket,
    private readonly logger: Logger,
    private readonly ackTimeoutMs: number,
    private readonly onGone: (c: ZtunnelConnection) => void,
  ) {
    const reader = new LineReader(
      (line) => this.onLine(line),
      () => this.fail(AgentSocketErrorCode.LINE_TOO_LONG, "a line longer than the protocol allows"),
    );
    socket.on("data", (chunk) => reader.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new ZtunnelAckError("ztunnel disconnected before acknowledging"));
      }
      this.pending.clear();
      this.onGone(this);
    });
  }

  send(message: DistributiveOmit<AgentMessage, "id">): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const why = `no ack for ${message.type} ${id} within ${this.ackTimeoutMs} ms`;
        reject(new ZtunnelAckError(why));
        this.fail(AgentSocketErrorCode.ACK_TIMEOUT, why);
      }, this.ackTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeLine({ ...message, id } as AgentMessage));
    });
  }

  private onLine(line: string): void {
    let msg: ReturnType<typeof parseZtunnelMessage>;
    try {
      msg = parseZtunnelMessage(line);
    } catch (err) {
      this.fail(AgentSocketErrorCode.BAD_MESSAGE, (err as Error).message);
      return;
    }
    if (msg.type === "error") {
      this.logger.error({ error: msg.error }, "ztunnel refused our message; closing its connection");
      this.socket.destroy();
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) {
      this.logger.warn({ id: msg.id }, "ack for a message we are not waiting on");
      return;
    }
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new ZtunnelAckError(msg.error));
    else p.resolve();
  }

  /** The peer is not speaking our protocol, or not keeping up: tell it why and hang up, once. */
  private fail(code: string, why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.logger[agentSocketLogLevel(code)]({ code }, `closing a ztunnel connection: ${why}`);
    this.socket.end(encodeLine({ type: "error", error: why }));
    this.socket.destroySoon();
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export class ZtunnelServer {
  private server: Server | undefined;
  private readonly connections = new Set<ZtunnelConnection>();

  constructor(
    private readonly socketPath: string,
    /** Every pod the agent has enrolled right now: replayed to each ztunnel that connects. */
    private readonly enrolled: () => InpodPod[],
    private readonly logger: Logger,
    private readonly ackTimeoutMs = ACK_TIMEOUT_MS,
  ) {}

  get connected(): number {
    return this.connections.size;
  }

  async start(): Promise<void> {
    // A socket file left by a previous agent would make listen fail with EADDRINUSE.
    await rm(this.socketPath, { force: true });
    this.server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.socketPath, () => resolve());
    });
    await chmod(this.socketPath, 0o600);
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Tells every connected ztunnel about an enrolled pod. No ztunnel yet: it gets it on connect. */
  async add(pod: InpodPod): Promise<void> {
    await this.broadcast({ type: "add", pod });
  }

  async del(uid: string): Promise<void> {
    await this.broadcast({ type: "del", uid });
  }

  private async broadcast(message: DistributiveOmit<AgentMessage, "id">): Promise<void> {
    const results = await Promise.allSettled([...this.connections].map((c) => c.send(message)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) {
      throw new ZtunnelAckError(failed.map((f) => (f.reason as Error).message).join("; "));
    }
  }

  private accept(socket: Socket): void {
    const conn = new ZtunnelConnection(socket, this.logger, this.ackTimeoutMs, (c) => {
      this.connections.delete(c);
      this.logger.info({ connected: this.connections.size }, "ztunnel disconnected");
    });
    this.connections.add(conn);
    const pods = this.enrolled();
    this.logger.info({ pods: pods.length }, "ztunnel connected; replaying enrolled pods");
    // Written in one tick, before any live update can interleave: adds, then the snapshot marker.
    const replay = [...pods.map((pod) => conn.send({ type: "add", pod })), conn.send({ type: "snapshot" })];
    void Promise.all(replay).then(
      () => this.logger.info({ pods: pods.length }, "ztunnel acknowledged the snapshot"),
      // The connection's own failure (unreadable reply, ack deadline) was logged when it was closed.
      (err) => this.logger.debug({ err: (err as Error).message }, "ztunnel did not acknowledge the replay"),
    );
  }
}
