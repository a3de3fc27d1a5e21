// One request through the waypoint as telemetry sees it: what each stage learnt (route, upstream
// host, attempts, bytes, status, response flag), and `record`, the single place that turns it into
// Istio's metrics and one access-log line — for plain requests, local replies, failures and
// upgraded connections alike, exactly once.

import { classify, type Service, type Workload } from "@ambient/core";
import type { AccessLog } from "@ambient/dataplane";
import type { L7Request } from "../../model/request.js";
import type { HttpLabels, HttpMetrics } from "../../telemetry/metrics.js";
import { NO_FLAG } from "../errors.js";

export interface StreamInfo {
  sourceIp: string;
  /** `ip:port` of the peer (the source ztunnel or the client's pod). */
  sourceAddress: string;
  sourcePrincipal: string;
  /** The original destination (VIP:port or podIP:port) the HBONE :authority named. */
  destination: { host: string; namespace?: string; ip: string; port: number };
  labels: Omit<HttpLabels, "response_code" | "response_flags" | "request_protocol">;
  /** An ingress gateway's TLS-terminated connection: the requests are https, the SNI is this. */
  tls?: { serverName?: string };
  /**
   * An ingress gateway's requests: the destination is known only once routed, so the labels are
   * made from the endpoint and service picked (absent: `labels` as they are).
   */
  labelsFor?: (upstream: Upstream) => StreamInfo["labels"];
}

/** The endpoint a request went to last, and its service. */
export interface Upstream {
  workload?: Workload;
  service?: Service;
}

export interface Telemetry {
  metrics: HttpMetrics;
  accessLog: AccessLog;
}

export class Exchange {
  readonly started = performance.now();
  /** 0 until something was answered (Envoy logs 0 for a client that left before any answer). */
  status = 0;
  flag = NO_FLAG;
  requestBytes = 0;
  responseBytes = 0;
  upstreamHost = "";
  /** Set by the forward stage per attempt. */
  upstream: Upstream | undefined;
  routeName = "";
  /** Envoy's %UPSTREAM_REQUEST_ATTEMPT_COUNT%: 1 + retries. */
  attempts = 0;
  /** The connection switched protocols (101): bytes are the tunnel's, duration its lifetime. */
  upgraded = false;
  /** Why it failed: its flag is the classifier's, and the access log says it once at its level. */
  failure: unknown;
  private recorded = false;

  constructor(
    readonly l7: L7Request,
    readonly info: StreamInfo,
  ) {}

  /** A failure: the flag the classifier gives, and the error for the access log. */
  fail(err: unknown): void {
    this.flag = classify(err).flag;
    this.failure = err;
  }

  /** Writes the metrics and the access-log line; later calls do nothing. */
  record(t: Telemetry): void {
    if (this.recorded) return;
    this.recorded = true;
    const duration = performance.now() - this.started;
    const base = this.info.labelsFor && this.upstream ? this.info.labelsFor(this.upstream) : this.info.labels;
    const labels: HttpLabels = {
      ...base,
      request_protocol: this.l7.protocol === "grpc" ? "grpc" : "http",
      response_code: String(this.status),
      response_flags: this.flag,
    };
    t.metrics.record(labels, duration, this.requestBytes, this.responseBytes);
    const l = base;
    const known = (v: string) => (v === "unknown" ? undefined : v);
    t.accessLog.write(
      {
        direction: "inbound",
        "src.addr": this.info.sourceAddress,
        "src.identity": this.info.sourcePrincipal,
        "src.workload": known(l.source_workload),
        "src.namespace": known(l.source_workload_namespace),
        "dst.addr": `${this.info.destination.ip}:${this.info.destination.port}`,
        "dst.service": this.info.destination.host,
        "dst.workload": known(l.destination_workload),
        "dst.namespace": known(l.destination_workload_namespace),
        bytes_recv: this.requestBytes,
        bytes_sent: this.responseBytes,
        duration: Math.round(duration),
        response_flags: this.flag,
        method: this.l7.method,
        path: this.l7.path,
        authority: this.l7.authority,
        protocol: this.l7.protocol,
        response_code: this.status,
        upstream_host: this.upstreamHost || undefined,
        route_name: this.routeName || undefined,
        attempts: this.attempts || undefined,
        upgraded: this.upgraded || undefined,
      },
      this.failure === undefined ? undefined : { error: this.failure, message: "request failed" },
    );
  }
}
