// Istio's four TCP metrics, as ztunnel exports them: opened/closed connection counters and
// received/sent byte counters, each with Istio's standard identity labels. Byte counters are read
// off the app-facing sockets at every scrape, so long-lived connections show progress.

import { Counter, type Registry } from "@ambient/core";

export const TCP_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_service",
  "destination_service_namespace",
  "destination_service_name",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "response_flags",
  "connection_security_policy",
] as const;

export type TcpLabelName = (typeof TCP_LABELS)[number];
export type TcpLabels = Record<TcpLabelName, string>;

/** Istio writes "unknown" for a label it cannot fill. */
export const UNKNOWN = "unknown";

/** ztunnel reports as the source or the destination of a connection; a waypoint as "waypoint". */
export type Reporter = "source" | "destination" | "waypoint";

export function emptyLabels(reporter: Reporter): TcpLabels {
  const labels = Object.fromEntries(TCP_LABELS.map((l) => [l, UNKNOWN])) as TcpLabels;
  labels.reporter = reporter;
  labels.request_protocol = "tcp";
  labels.response_flags = "-";
  return labels;
}

/** A socket's byte counters, or anything keeping the same two counts (a tunnel's stream). */
export interface ByteCounts {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** One open connection as metrics see it: its labels and the socket whose counters it reads. */
export interface MeteredConnection {
  labels: TcpLabels;
  /** The app-facing socket: bytes read from it were received, bytes written to it were sent... */
  socket: ByteCounts;
  /** ...unless the app is the destination, where the directions swap (request vs response). */
  appIsDestination: boolean;
  /** Counters at open: bytes before the tunnel existed (the SOCKS5 handshake) are not traffic. */
  baseRead: number;
  baseWritten: number;
  reportedReceived: number;
  reportedSent: number;
}

export class TcpMetrics {
  readonly opened: Counter<TcpLabelName>;
  readonly closed: Counter<TcpLabelName>;
  readonly received: Counter<TcpLabelName>;
  readonly sent: Counter<TcpLabelName>;
  private readonly open = new Set<MeteredConnection>();

  constructor(registry: Registry) {
    const labelNames = [...TCP_LABELS];
    this.opened = new Counter({
      name: "istio_tcp_connections_opened_total",
      help: "Total TCP connections opened",
      labelNames,
      registers: [registry],
    });
    this.closed = new Counter({
      name: "istio_tcp_connections_closed_total",
      help: "Total TCP connections closed",
      labelNames,
      registers: [registry],
    });
    // Flushing in `collect` of the first byte counter keeps both byte counters current per scrape.
    const flush = () => {
      for (const c of this.open) this.flushBytes(c);
    };
    this.received = new Counter({
      name: "istio_tcp_received_bytes_total",
      help: "Bytes received during request in TCP connections",
      labelNames,
      registers: [registry],
      collect: flush,
    });
    this.sent = new Counter({
      name: "istio_tcp_sent_bytes_total",
      help: "Bytes sent during response in TCP connections",
      labelNames,
      registers: [registry],
    });
  }

  connectionOpened(labels: TcpLabels, socket: ByteCounts, appIsDestination: boolean): MeteredConnection {
    const c: MeteredConnection = {
      labels,
      socket,
      appIsDestination,
      baseRead: socket.bytesRead ?? 0,
      baseWritten: socket.bytesWritten ?? 0,
      reportedReceived: 0,
      reportedSent: 0,
    };
    this.opened.inc(labels);
    this.open.add(c);
    return c;
  }

  /** Labels can change after open (response_flags on failure); closing uses the final ones. */
  connectionClosed(c: MeteredConnection): { received: number; sent: number } {
    if (!this.open.delete(c)) return { received: c.reportedReceived, sent: c.reportedSent };
    this.flushBytes(c);
    this.closed.inc(c.labels);
    return { received: c.reportedReceived, sent: c.reportedSent };
  }

  private flushBytes(c: MeteredConnection): void {
    const read = (c.socket.bytesRead ?? 0) - c.baseRead;
    const written = (c.socket.bytesWritten ?? 0) - c.baseWritten;
    const received = c.appIsDestination ? written : read;
    const sent = c.appIsDestination ? read : written;
    if (received > c.reportedReceived) this.received.inc(c.labels, received - c.reportedReceived);
    if (sent > c.reportedSent) this.sent.inc(c.labels, sent - c.reportedSent);
    c.reportedReceived = Math.max(received, c.reportedReceived);
    c.reportedSent = Math.max(sent, c.reportedSent);
  }
}
