// ztunnel's side of the in-pod protocol: connects to the node agent's unix socket, keeps the set
// of pods the agent says are enrolled (with their netns), and reconnects with backoff when the
// agent goes away. While the agent is away the known pods stay served: an agent restart must not
// drop traffic. After a reconnect the agent replays its pods and sends a snapshot marker; pods it
// did not mention then are dropped.

import { EventEmitter } from "node:events";
import { connect, type Socket } from "node:net";
import {
  type AgentMessage,
  Backoff,
  encodeLine,
  type InpodPod,
  type InpodProtocolError,
  LineReader,
  type Logger,
  parseAgentMessage,
  type ZtunnelMessage,
} from "@ambient/core";

export interface AgentClientEvents {
  /** The set of announced pods changed. */
  changed: [];
}

export class AgentClient extends EventEmitter<AgentClientEvents> {
  /** Pods the agent announced, by uid. */
  readonly pods = new Map<string, InpodPod>();
  /** True once a snapshot marker arrived on the current or an earlier connection. */
  synced = false;
  connected = false;
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly backoff = new Backoff(200, 5_000, 0.1);
  /** uids announced on the current connection (since its last snapshot marker). */
  private seen = new Set<string>();

  constructor(
    private readonly socketPath: string,
    private readonly logger: Logger,
  ) {
    super();
  }

  start(): void {
    this.dial();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
  }

  private dial(): void {
    if (this.closed) return;
    const socket = connect({ path: this.socketPath });
    this.socket = socket;
    this.seen = new Set();
    const reader = new LineReader(
      (line) => this.onLine(socket, line),
      () => this.fail(socket, `a line longer than the protocol allows`),
    );
    socket.on("connect", () => {
      this.connected = true;
      this.backoff.reset();
      this.logger.info({ socket: this.socketPath }, "connected to the node agent");
    });
    socket.on("data", (chunk) => reader.push(chunk));
    socket.on("error", (err) => {
      if (!this.connected)
        this.logger.warn({ socket: this.socketPath, err: err.message }, "node agent unreachable");
    });
    socket.on("close", () => {
      if (this.socket !== socket) return;
      if (this.connected)
        this.logger.warn({ socket: this.socketPath }, "node agent connection lost; pods stay served");
      this.connected = false;
      if (this.closed) return;
      const wait = this.backoff.next();
      this.timer = setTimeout(() => this.dial(), wait);
      this.timer.unref();
    });
  }

  private onLine(socket: Socket, line: string): void {
    let msg: AgentMessage;
    try {
      msg = parseAgentMessage(line);
    } catch (err) {
      this.fail(socket, (err as InpodProtocolError).message);
      return;
    }
    switch (msg.type) {
      case "add": {
        const prev = this.pods.get(msg.pod.uid);
        this.pods.set(msg.pod.uid, msg.pod);
        this.seen.add(msg.pod.uid);
        this.logger.info({ pod: msg.pod.uid, netns: msg.pod.netns, ips: msg.pod.ips }, "agent: pod added");
        this.reply(socket, { id: msg.id, type: "ack" });
        if (!prev || prev.netns !== msg.pod.netns || prev.ips.join() !== msg.pod.ips.join())
          this.emit("changed");
        return;
      }
      case "del": {
        const known = this.pods.delete(msg.uid);
        this.seen.delete(msg.uid);
        this.logger.info({ pod: msg.uid, known }, "agent: pod removed");
        // Deleting an unknown pod is not an error: the agent may retry a delete after a restart.
        this.reply(socket, { id: msg.id, type: "ack" });
        if (known) this.emit("changed");
        return;
      }
      case "snapshot": {
        const stale = [...this.pods.keys()].filter((uid) => !this.seen.has(uid));
        for (const uid of stale) this.pods.delete(uid);
        this.synced = true;
        this.logger.info({ pods: this.pods.size, dropped: stale }, "agent: snapshot complete");
        this.reply(socket, { id: msg.id, type: "ack" });
        this.emit("changed");
        return;
      }
    }
  }

  private reply(socket: Socket, msg: ZtunnelMessage): void {
    if (!socket.destroyed) socket.write(encodeLine(msg));
  }

  /** The agent sent something unreadable: say what, and start over on a new connection. */
  private fail(socket: Socket, why: string): void {
    this.logger.error(
      { socket: this.socketPath, why },
      "node agent sent an unreadable message; reconnecting",
    );
    socket.end(encodeLine({ type: "error", error: why }));
    socket.destroySoon();
  }
}
