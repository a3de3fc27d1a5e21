// A prom-client registry per component, so two components in one process (tests, the local mesh)
// never collide on metric names, and a scrape handler that serves it.

import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

export { Counter, Gauge, Histogram, Registry } from "prom-client";

export function createRegistry(
  options: { processMetrics?: boolean; labels?: Record<string, string> } = {},
): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Serves `GET /metrics` in the Prometheus text format. */
export async function serveMetrics(
  registry: Registry,
  _req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const body = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType });
    res.end(body);
  } catch (err) {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(`metrics collection failed: ${String(err)}\n`);
  }
}
