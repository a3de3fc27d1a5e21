// One JSON line per connection, when it closes: who talked to whom, which way, how much, how long,
// and why it failed. Field names follow Istio ztunnel's access log (src.addr, dst.hbone_addr, ...).

import type { Logger } from "@ambient/core";

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

export class AccessLog {
  private readonly log: Logger;

  constructor(
    logger: Logger,
    private readonly enabled: boolean,
  ) {
    this.log = logger.child({ component: "access" });
  }

  write(entry: AccessLogEntry): void {
    if (!this.enabled) return;
    const msg = entry.error ? `connection failed: ${entry.error}` : "connection complete";
    if (entry.error) this.log.warn(entry, msg);
    else this.log.info(entry, msg);
  }
}
