// Every proxied connection from accept to close: metrics, the access log line, drain and, for
// inbound ones, the facts needed to re-check policy when it changes. `finish` runs exactly once.

import type { Socket } from "node:net";
import { type AmbientError, classify, type Drain, type DrainHandle, ProxyErrorCode } from "@ambient/core";
import type { AccessLog, AccessLogEntry, MeteredConnection, TcpLabels, TcpMetrics } from "@ambient/dataplane";
import type { ConnectionFacts } from "../rbac/index.js";
import { proxyError } from "./errors.js";

export interface ConnectionTelemetry {
  metrics: TcpMetrics;
  accessLog: AccessLog;
  drain: Drain;
}

type LogFields = Omit<AccessLogEntry, "bytes_sent" | "bytes_recv" | "duration" | "error" | "response_flags">;

/**
 * One open connection as /config_dump lists it, in the terms of istioctl's `ztunnel-config
 * connections`: the local workload, what it talks to and, outbound, the address it asked for.
 */
export interface ConnectionSummary {
  /** The workload on this node: the source outbound, the destination inbound ("name.namespace"). */
  workload: string;
  direction: "inbound" | "outbound";
  /** The local workload's end. */
  local: string;
  /** The other end: the peer's address inbound; outbound the HBONE address dialled (or the passthrough destination). */
  remote: string;
  /** Outbound: the destination the app asked for (a service VIP:port or a pod's); inbound: the service, when known. */
  remoteTarget?: string;
  /** HBONE when the connection is tunnelled, TCP for passthrough and plaintext inbound. */
  protocol: "HBONE" | "TCP";
  /** False while the upstream is still being opened. */
  established: boolean;
}

export function compareConnections(a: ConnectionSummary, b: ConnectionSummary): number {
  return (
    a.workload.localeCompare(b.workload) ||
    a.direction.localeCompare(b.direction) ||
    a.local.localeCompare(b.local)
  );
}

export class Connection {
  private readonly started = performance.now();
  private metered: MeteredConnection | undefined;
  private drainHandle: DrainHandle;
  private finished = false;
  /** Why we closed it ourselves (policy change, drain): reported instead of the copy's outcome. */
  private closedBecause: AmbientError | undefined;
  /** Inbound only: what policy re-checks evaluate. */
  recheck?: { facts: ConnectionFacts; destinationUid: string };
  /** The destination as first given (outbound: what the app asked for, before resolution rewrites dst.addr). */
  private readonly requested: string;

  constructor(
    private readonly t: ConnectionTelemetry,
    private log: LogFields,
    /** Ends the connection: both sockets destroyed. */
    private readonly abort: (reason: AmbientError) => void,
    private readonly registry: Set<Connection>,
  ) {
    this.requested = log["dst.addr"];
    registry.add(this);
    this.drainHandle = t.drain.track((graceful) => {
      // TCP has no graceful "go away": let connections run until the deadline, then cut them.
      if (!graceful) this.close(proxyError(ProxyErrorCode.DRAINED, "closed at the drain deadline"));
    });
  }

  /** Starts metrics once the connection is established; `appSocket` is the app-facing socket. */
  established(
    labels: TcpLabels,
    appSocket: Socket,
    appIsDestination: boolean,
    more: Partial<LogFields> = {},
  ): void {
    this.log = { ...this.log, ...more };
    this.metered = this.t.metrics.connectionOpened(labels, appSocket, appIsDestination);
  }

  update(more: Partial<LogFields>): void {
    this.log = { ...this.log, ...more };
  }

  /**
   * Built from the access-log fields the connection keeps anyway, and only when asked (config
   * dump), so listing connections adds nothing to the data path.
   */
  summary(): ConnectionSummary {
    const l = this.log;
    const protocol = l["dst.hbone_addr"] !== undefined ? "HBONE" : "TCP";
    const established = this.metered !== undefined;
    if (l.direction === "inbound")
      return {
        workload: `${l["dst.workload"] ?? "unknown"}.${l["dst.namespace"] ?? "unknown"}`,
        direction: "inbound",
        local: l["dst.addr"],
        remote: l["src.addr"],
        ...(l["dst.service"] !== undefined ? { remoteTarget: l["dst.service"] } : {}),
        protocol,
        established,
      };
    return {
      workload: `${l["src.workload"] ?? "unknown"}.${l["src.namespace"] ?? "unknown"}`,
      direction: "outbound",
      local: l["src.addr"],
      remote: l["dst.hbone_addr"] ?? l["dst.addr"],
      remoteTarget: this.requested,
      protocol,
      established,
    };
  }

  close(reason: AmbientError): void {
    this.closedBecause ??= reason;
    this.abort(reason);
  }

  /**
   * Records the end of the connection; a failure before `established` is still logged, once, with
   * `failureMessage` (the phase's words for it) at the level core's classifier gives.
   */
  finish(result?: unknown, failureMessage = "connection failed"): void {
    if (this.finished) return;
    const error = this.closedBecause ?? result;
    this.finished = true;
    this.registry.delete(this);
    this.drainHandle.release();
    let bytes = { received: 0, sent: 0 };
    let flag: string | undefined;
    if (error) flag = classify(error).flag;
    if (this.metered) {
      if (flag) this.metered.labels.response_flags = flag;
      bytes = this.t.metrics.connectionClosed(this.metered);
    }
    this.t.accessLog.write(
      {
        ...this.log,
        bytes_sent: bytes.sent,
        bytes_recv: bytes.received,
        duration: Math.round(performance.now() - this.started),
        ...(flag ? { response_flags: flag } : {}),
      },
      error ? { error, message: this.closedBecause ? "connection closed" : failureMessage } : undefined,
    );
  }
}
