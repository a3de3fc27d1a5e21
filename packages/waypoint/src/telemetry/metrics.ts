// Istio's standard HTTP metrics as the waypoint reports them (reporter="waypoint"): request count,
// duration and request/response sizes, with exactly the label set ztunnel's TCP metrics carry plus
// response_code, so one dashboard query joins both proxies.

import { Counter, Histogram, type Registry } from "@ambient/core";
import { TCP_LABELS } from "@ambient/dataplane";

/** ztunnel's TCP label set (identities, canonical service and revision, cluster) plus the status. */
export const HTTP_LABELS = [...TCP_LABELS, "response_code"] as const;

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
