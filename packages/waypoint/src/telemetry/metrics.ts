// Istio's standard HTTP metrics as the waypoint reports them (reporter="waypoint"): request count,
// duration and request/response sizes, with the identity labels ztunnel uses plus response_code
// and response_flags.

import { Counter, Histogram, type Registry } from "@ambient/core";

export const HTTP_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "destination_service",
  "destination_service_namespace",
  "destination_service_name",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "request_protocol",
  "response_code",
  "response_flags",
  "connection_security_policy",
] as const;

export type HttpLabels = Record<(typeof HTTP_LABELS)[number], string>;

// Istio's default duration buckets (ms) and byte-size buckets.
const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
];
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

export class HttpMetrics {
  readonly requests: Counter<string>;
  readonly duration: Histogram<string>;
  readonly requestBytes: Histogram<string>;
  readonly responseBytes: Histogram<string>;

  constructor(registry: Registry) {
    const labelNames = [...HTTP_LABELS];
    this.requests = new Counter({
      name: "istio_requests_total",
      help: "Requests processed",
      labelNames,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "istio_request_duration_milliseconds",
      help: "Request duration",
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.requestBytes = new Histogram({
      name: "istio_request_bytes",
      help: "Request body sizes",
      labelNames,
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
    this.responseBytes = new Histogram({
      name: "istio_response_bytes",
      help: "Response body sizes",
      labelNames,
      buckets: SIZE_BUCKETS,
      registers: [registry],
    });
  }

  record(labels: HttpLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    this.requests.inc(labels);
    this.duration.observe(labels, durationMs);
    this.requestBytes.observe(labels, requestBytes);
    this.responseBytes.observe(labels, responseBytes);
  }
}
