// The control plane's monitoring port (istiod's 15014, `http-monitoring`): Prometheus metrics under
// Istio's names where Istio has one, and `/ready` for the Deployment's readiness probe, so a
// rollout (and `helm upgrade --wait`) moves on only once the new control plane serves xDS and the
// CA. The port opens before the sources load: until then `/ready` answers 503 with the reason.

import { createServer, type Server } from "node:http";
import {
  Counter,
  createRegistry,
  type DeltaAdsHooks,
  Gauge,
  type HostPort,
  type Logger,
  type Registry,
  serveMetrics,
} from "@ambient/core";

export type Phase = "loading" | "serving" | "stopping";

export class Monitoring {
  readonly registry: Registry = createRegistry({ processMetrics: true });
  private phase: Phase = "loading";
  private server: Server | undefined;
  private readonly xdsClients = new Gauge({
    name: "pilot_xds",
    help: "Number of xDS streams connected to this control plane.",
    registers: [this.registry],
  });
  private readonly xdsRejects = new Counter({
    name: "pilot_total_xds_rejects",
    help: "Configuration a proxy rejected (NACK), by resource type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  private readonly csrs = new Counter({
    name: "citadel_server_csr_count",
    help: "Certificate signing requests received.",
    registers: [this.registry],
  });
  private readonly issued = new Counter({
    name: "citadel_server_success_cert_issuance_count",
    help: "Certificates issued.",
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: "ambient_ca_refusals_total",
    help: "Certificate requests refused, by refusal code (AMB_*: who the caller is, or what it may not have).",
    labelNames: ["code"],
    registers: [this.registry],
  });
  private readonly authFailures = new Counter({
    name: "citadel_server_authentication_failure_count",
    help: "Certificate requests whose caller could not be authenticated.",
    registers: [this.registry],
  });
  private readonly pushes = new Counter({
    name: "ambient_controlplane_publishes_total",
    help: "Configuration versions published to the xDS store (each translation of a source change).",
    registers: [this.registry],
  });

  constructor(private readonly logger: Logger) {}

  /** Opens the port; the address actually bound (port 0 resolves). */
  async listen(at: HostPort): Promise<HostPort> {
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://monitoring").pathname;
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET", "content-type": "text/plain; charset=utf-8" });
        return res.end(`${path} is read-only: use GET (got ${req.method})\n`);
      }
      if (path === "/metrics") return void serveMetrics(this.registry, req, res);
      if (path === "/ready") {
        const ready = this.phase === "serving";
        res.writeHead(ready ? 200 : 503, { "content-type": "text/plain; charset=utf-8" });
        return res.end(ready ? "ready\n" : `not ready: ${this.phase}\n`);
      }
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end(`no such endpoint ${path}; try /ready, /metrics\n`);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) =>
        reject(
          new Error(`cannot open the monitoring port ${at.host}:${at.port}: ${err.message}`, { cause: err }),
        ),
      );
      server.listen(at.port, at.host, () => resolve());
    });
    const bound = server.address();
    const port = typeof bound === "object" && bound ? bound.port : at.port;
    this.logger.info({ address: `${at.host}:${port}` }, "monitoring port open (/ready, /metrics)");
    return { host: at.host, port };
  }

  set(phase: Phase): void {
    this.phase = phase;
  }

  published(): void {
    this.pushes.inc();
  }

  /** Counts streams and NACKs; chained in front of the caller's own hooks. */
  adsHooks(next: DeltaAdsHooks = {}): DeltaAdsHooks {
    return {
      onStreamOpen: (client) => {
        this.xdsClients.inc();
        next.onStreamOpen?.(client);
      },
      onStreamClose: (client, error) => {
        this.xdsClients.dec();
        next.onStreamClose?.(client, error);
      },
      onAck: (event) => next.onAck?.(event),
      onNack: (event) => {
        this.xdsRejects.inc({ type: shortType(event.typeUrl) });
        next.onNack?.(event);
      },
    };
  }

  caRequest(): void {
    this.csrs.inc();
  }

  caSigned(): void {
    this.issued.inc();
  }

  caRefused(code: string | undefined, unauthenticated: boolean): void {
    this.refusals.inc({ code: code ?? "unknown" });
    if (unauthenticated) this.authFailures.inc();
  }

  async close(): Promise<void> {
    this.phase = "stopping";
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** `type.googleapis.com/istio.workload.Address` → `Address`: a short, bounded label value. */
function shortType(typeUrl: string | undefined): string {
  if (!typeUrl) return "unknown";
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}
