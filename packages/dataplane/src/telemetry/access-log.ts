// One JSON line per connection (ztunnel, the waypoint's opaque TCP) or request (the waypoint's
// HTTP), when it ends: who talked to whom, which way, how much, how long, and why it failed. The
// connection fields are Istio ztunnel's (src.addr, dst.hbone_addr, bytes_recv, ...), the HTTP ones
// Envoy's (method, path, response_code, upstream_host, ...), the same names in both proxies.
//
// A failure is logged once: in this line, at the level core's classifier gives it; with the access
// log off, as a line of its own at that level, so turning the log off never hides a failure.

import { classify, errorMessage, type Logger } from "@ambient/core";

export interface AccessLogEntry {
  direction: "inbound" | "outbound";
  "src.addr": string;
  "src.workload"?: string;
  "src.namespace"?: string;
  "src.identity"?: string;
  "dst.addr": string;
  "dst.hbone_addr"?: string;
  "dst.service"?: string;
  "dst.workload"?: string;
  "dst.namespace"?: string;
  "dst.identity"?: string;
  bytes_sent: number;
  bytes_recv: number;
  /** Milliseconds from accept to close. */
  duration: number;
  response_flags?: string;
  error?: string;
}

/** The HTTP fields of a request's line (Envoy's names). */
export interface HttpAccessLogFields {
  method: string;
  path: string;
  authority: string;
  protocol: string;
  response_code: number;
  upstream_host?: string;
  route_name?: string;
  /** Envoy's %UPSTREAM_REQUEST_ATTEMPT_COUNT%: 1 + retries. */
  attempts?: number;
  /** The request switched protocols (101): bytes and duration are the tunnel's. */
  upgraded?: boolean;
}

export class AccessLog {
  private readonly log: Logger;

  constructor(
    logger: Logger,
    private readonly enabled: boolean,
  ) {
    this.log = logger.child({ component: "access" });
  }

  /**
   * `failure`: why it failed and the phase's words for it ("inbound plaintext connection refused");
   * the entry's `error` field is filled from it.
   */
  write(
    entry: AccessLogEntry | (AccessLogEntry & HttpAccessLogFields),
    failure?: { error: unknown; message: string },
  ): void {
    if (!failure) {
      if (this.enabled) this.log.info(entry, "method" in entry ? "request" : "connection complete");
      return;
    }
    const { level } = classify(failure.error);
    const line = { ...entry, error: errorMessage(failure.error) };
    this.log[level](line, failure.message);
  }
}
