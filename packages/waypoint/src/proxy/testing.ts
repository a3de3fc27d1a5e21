// Builders for the request-path unit tests: an endpoint outside the mesh (plain TCP, so a test's
// own server on 127.0.0.1 is the app), stages that send everything to it, and a context with the
// real senders and bounds a test can shorten. Real sockets throughout; nothing here is a mock.

import { createMemoryLogger, createRegistry, type Workload } from "@ambient/core";
import { AccessLog } from "@ambient/dataplane";
import type { L7Request } from "../model/request.js";
import { HttpMetrics } from "../telemetry/metrics.js";
import type { HttpContext, StreamInfo } from "./http.js";
import { h2Sender } from "./request/send-h2.js";
import { http1Sender } from "./request/send-http1.js";
import type { EndpointPick, RetryPlan, Stages } from "./stages.js";
import { DEFAULT_BOUNDS, type RequestBounds } from "./timeouts.js";
import type { UpstreamDeps } from "./upstream.js";
import { UpstreamAgents } from "./upstream-agents.js";
import { UpstreamH2Sessions } from "./upstream-h2-sessions.js";

export { eventually } from "@ambient/core/testing";

/** A workload outside the mesh at 127.0.0.1: openUpstream dials it over plain TCP. */
export function plainWorkload(uid = "app"): Workload {
  return {
    uid,
    name: uid,
    namespace: "test",
    addresses: [Uint8Array.from([127, 0, 0, 1])],
    tunnelProtocol: "NONE",
  } as unknown as Workload;
}

export const NO_RETRY: RetryPlan = { attempts: 0, shouldRetry: () => false };

export const info: StreamInfo = {
  sourceIp: "127.0.0.1",
  sourceAddress: "127.0.0.1:40000",
  sourcePrincipal: "spiffe://cluster.local/ns/test/sa/client",
  destination: { host: "app.test.svc.cluster.local", namespace: "test", ip: "127.0.0.1", port: 80 },
  labels: {} as StreamInfo["labels"],
};

export function l7Request(path = "/"): L7Request {
  return {
    method: "GET",
    scheme: "http",
    authority: "app",
    path,
    headers: {},
    port: 80,
    protocol: "http/1.1",
    source: { ip: "127.0.0.1" },
    destination: info.destination,
  };
}

/** Stages that allow everything and route to `port` on 127.0.0.1 with `retry`. */
export function stagesTo(
  port: number,
  opts: { retry?: RetryPlan; acquireRetry?: EndpointPick["acquireRetry"]; timeoutMs?: number } = {},
): Stages & { picks: number } {
  const stages = {
    picks: 0,
    authenticate: async () => ({ ok: true }),
    authorize: () => ({ allowed: true, reason: "test" }),
    authorizeTcp: () => ({ allowed: true, reason: "test" }),
    route: () => ({
      kind: "forward" as const,
      host: "app",
      port,
      retry: opts.retry ?? NO_RETRY,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    }),
    pick: () => {
      stages.picks++;
      return {
        ok: true as const,
        endpoint: {
          workload: plainWorkload(),
          port,
          done: () => {},
          ...(opts.acquireRetry ? { acquireRetry: opts.acquireRetry } : {}),
        },
      };
    },
  };
  return stages;
}

export const plainDeps: UpstreamDeps = {
  pool: undefined as never,
  certificate: () => undefined,
  rootsPem: () => [],
  localAddress: "127.0.0.1",
  connectTimeoutMs: 2_000,
};

export function testContext(stages: Stages, bounds: Partial<RequestBounds> = {}) {
  const { logger, records } = createMemoryLogger("debug");
  const agents = new UpstreamAgents(plainDeps);
  const sessions = new UpstreamH2Sessions(plainDeps);
  const ctx: HttpContext = {
    stages: () => stages,
    sendHttp1: http1Sender(agents),
    sendH2: h2Sender(sessions),
    metrics: new HttpMetrics(createRegistry()),
    logger,
    accessLog: new AccessLog(logger, true),
    bounds: { ...DEFAULT_BOUNDS, ...bounds },
  };
  return {
    ctx,
    agents,
    access: () => records.filter((r) => r.component === "access"),
    close: () => {
      agents.destroy();
      sessions.destroy();
    },
  };
}
