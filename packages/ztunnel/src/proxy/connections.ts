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

export class Connection {
  private readonly started = performance.now();
  private metered: MeteredConnection | undefined;
  private drainHandle: DrainHandle;
  private finished = false;
  /** Why we closed it ourselves (policy change, drain): reported instead of the copy's outcome. */
  private closedBecause: AmbientError | undefined;
  /** Inbound only: what policy re-checks evaluate. */
  recheck?: { facts: ConnectionFacts; destinationUid: string };

  constructor(
    private readonly t: ConnectionTelemetry,
    private log: LogFields,
    /** Ends the connection: both sockets destroyed. */
    private readonly abort: (reason: AmbientError) => void,
    private readonly registry: Set<Connection>,
  ) {
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
