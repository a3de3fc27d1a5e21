// ztunnel's node-level HTTP endpoints: admin (15000: /config_dump, /logging, /quitquitquit),
// Prometheus metrics (15020: /metrics) and readiness (15021: /healthz/ready). Shared with the
// waypoint. Endpoints that change state take POST only, as Envoy's admin: a GET can be triggered
// cross-site by a browser or replayed by a crawler or a link preview.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isLogLevel, type Logger, type Registry, serveMetrics } from "@ambient/core";

export interface AdminHandlers {
  configDump(): unknown;
  logger: Logger;
  /** Readiness: xDS synced and every local pod has a certificate. Returns the reasons when not. */
  readiness(): { ready: boolean; reasons: string[] };
  registry: Registry;
  quit(): void;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(body.endsWith("\n") ? body : `${body}\n`);
}

/** 405 unless POST; true when the caller should go on. */
function postOnly(req: IncomingMessage, res: ServerResponse, what: string): boolean {
  if (req.method === "POST") return true;
  res.writeHead(405, { allow: "POST", "content-type": "text/plain; charset=utf-8" });
  res.end(`${what} changes state: use POST (got ${req.method})\n`);
  return false;
}

function server(routes: Record<string, Route>): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const route = routes[url.pathname];
    if (!route)
      return text(res, 404, `no such endpoint ${url.pathname}; try ${Object.keys(routes).join(", ")}`);
    Promise.resolve(route(req, res, url)).catch((err) => text(res, 500, String(err)));
  });
}

export function createAdminServer(h: AdminHandlers): Server {
  return server({
    "/config_dump": (_req, res) => json(res, 200, h.configDump()),
    "/logging": (req, res, url) => {
      if (!postOnly(req, res, "/logging")) return;
      const level = url.searchParams.get("level");
      if (level === null) return text(res, 200, `current level: ${h.logger.level}`);
      if (!isLogLevel(level))
        return text(res, 400, `unknown level "${level}"; use trace, debug, info, warn, error, fatal, silent`);
      h.logger.level = level;
      h.logger.info({ level }, "log level changed");
      return text(res, 200, `level set to ${level}`);
    },
    "/quitquitquit": (req, res) => {
      if (!postOnly(req, res, "/quitquitquit")) return;
      text(res, 200, "OK");
      h.quit();
    },
    "/healthz/ready": (_req, res) => readiness(h, res),
    "/metrics": (req, res) => serveMetrics(h.registry, req, res),
  });
}

export function createMetricsServer(h: Pick<AdminHandlers, "registry">): Server {
  return server({
    "/metrics": (req, res) => serveMetrics(h.registry, req, res),
    "/stats/prometheus": (req, res) => serveMetrics(h.registry, req, res),
  });
}

export function createReadinessServer(h: Pick<AdminHandlers, "readiness">): Server {
  return server({ "/healthz/ready": (_req, res) => readiness(h, res) });
}

function readiness(h: Pick<AdminHandlers, "readiness">, res: ServerResponse): void {
  const { ready, reasons } = h.readiness();
  if (ready) text(res, 200, "ready");
  else text(res, 503, `not ready: ${reasons.join("; ")}`);
}
