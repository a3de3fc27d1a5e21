// One HTTP request through the waypoint, in named phases: build the request → authenticate →
// authorize → route → (fault) → pick an endpoint → forward with retries and timeout → answer.
// Every phase that refuses answers with Istio's status and response flag; metrics and the access
// log are written once, when the response ends.

import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { Logger } from "@ambient/core";
import type { HeaderOps, L7Request } from "../model/request.js";
import type { HttpLabels, HttpMetrics } from "../telemetry/metrics.js";
import { forwardH2 } from "./h2-forward.js";
import type { AuthnResult, EndpointPick, RouteResult, Stages } from "./stages.js";
import { type UpstreamDeps, UpstreamError } from "./upstream.js";
import type { UpstreamAgents } from "./upstream-agents.js";

export interface StreamInfo {
  sourceIp: string;
  sourcePrincipal: string;
  /** The original destination (VIP:port or podIP:port) the HBONE :authority named. */
  destination: { host: string; namespace?: string; ip: string; port: number };
  labels: Omit<HttpLabels, "response_code" | "response_flags" | "request_protocol">;
}

export interface HttpContext {
  stages: () => Stages;
  upstream: UpstreamDeps;
  /** Keep-alive connections per endpoint for HTTP/1.1 requests. */
  agents: UpstreamAgents;
  metrics: HttpMetrics;
  logger: Logger;
  accessLog: boolean;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

export function buildRequest(req: IncomingMessage, info: StreamInfo): L7Request {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  const ns = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\//.exec(info.sourcePrincipal)?.[1];
  return {
    method: req.method ?? "GET",
    scheme: "http",
    authority: (req.headers.host ?? info.destination.host).toLowerCase(),
    path: req.url ?? "/",
    headers,
    port: info.destination.port,
    protocol: (req.headers["content-type"] ?? "").startsWith("application/grpc")
      ? "grpc"
      : req.httpVersionMajor === 2
        ? "h2"
        : "http/1.1",
    source: { ip: info.sourceIp, principal: info.sourcePrincipal, ...(ns ? { namespace: ns } : {}) },
    destination: info.destination,
  };
}

export async function handleHttp(
  ctx: HttpContext,
  info: StreamInfo,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const started = performance.now();
  const l7 = buildRequest(req, info);
  const stages = ctx.stages();
  let flag = "-";
  let upstreamHost = "";
  let routeName = "";
  let attempts = 0;
  let requestBytes = 0;
  // The body is read only when forwarding: authentication, authorization and routing come first.
  const finish = (status: number) => {
    const labels = {
      ...info.labels,
      request_protocol: l7.protocol === "grpc" ? "grpc" : "http",
      response_code: String(status),
      response_flags: flag,
    };
    const duration = performance.now() - started;
    ctx.metrics.record(
      labels,
      duration,
      requestBytes,
      Number(res.getHeader("content-length") ?? 0) || responseBytes,
    );
    if (ctx.accessLog) {
      ctx.logger.info(
        {
          component: "access",
          method: l7.method,
          path: l7.path,
          authority: l7.authority,
          protocol: l7.protocol,
          status,
          response_flags: flag,
          bytes_received: requestBytes,
          bytes_sent: responseBytes,
          duration: Math.round(duration),
          upstream_host: upstreamHost || undefined,
          route_name: routeName || undefined,
          // Envoy's %UPSTREAM_REQUEST_ATTEMPT_COUNT%: 1 + retries.
          attempts: attempts || undefined,
          "src.identity": info.sourcePrincipal,
          "dst.service": info.destination.host,
        },
        "request",
      );
    }
  };
  let responseBytes = 0;
  const respond = (status: number, headers: Record<string, string>, text: string, f: string) => {
    flag = f;
    responseBytes = Buffer.byteLength(text);
    res.writeHead(status, {
      "content-type": "text/plain",
      "content-length": String(responseBytes),
      ...headers,
    });
    res.end(text);
    finish(status);
  };

  // Phase 1: authenticate (JWT).
  const auth: AuthnResult = await stages.authenticate(l7);
  if (!auth.ok)
    return respond(
      auth.status ?? 401,
      { "www-authenticate": "Bearer" },
      `${auth.reason ?? "Jwt verification fails"}`,
      "UAEX",
    );
  for (const h of auth.removeHeaders ?? []) delete l7.headers[h];
  Object.assign(l7.headers, auth.addHeaders ?? {});

  // Phase 2: authorize.
  const authz = stages.authorize(l7, auth);
  if (!authz.allowed) return respond(403, {}, "RBAC: access denied", "DENY");

  // Phase 3: route.
  const route: RouteResult = stages.route(l7);
  if (route.kind === "respond")
    return respond(route.status, route.headers ?? {}, route.body ?? "", route.flag ?? "-");
  routeName = route.name ?? "";

  // Phase 4: faults.
  if (route.fault?.delayMs) await new Promise((r) => setTimeout(r, route.fault!.delayMs));
  if (route.fault?.abortStatus) return respond(route.fault.abortStatus, {}, "fault filter abort", "FI");

  // Phase 5: forward. HTTP/2 (h2c, gRPC) streams through unbuffered; HTTP/1.1 bodies are buffered so
  // a failed attempt can be retried, with the route's timeout over all attempts.
  const deadline = route.timeoutMs ? started + route.timeoutMs : undefined;
  const headers = forwardHeaders(l7, route, info);
  const path = route.rewrite?.path ?? l7.path;
  if (req.httpVersionMajor === 2) {
    const picked = stages.pick(l7, {
      host: route.host,
      ...(route.subset ? { subset: route.subset } : {}),
      port: route.port ?? l7.port,
    });
    if (!picked.ok) return respond(picked.status, {}, picked.reason, picked.flag);
    upstreamHost = `${picked.endpoint.workload.name}:${picked.endpoint.port}`;
    const outcome = await forwardH2(
      ctx.upstream,
      picked.endpoint,
      req as never,
      res as never,
      headers,
      path,
      (n) => {
        requestBytes += n;
      },
    );
    picked.endpoint.done(
      outcome.status !== undefined
        ? { status: outcome.status }
        : { connectFailure: outcome.connectFailure === true },
    );
    responseBytes = outcome.responseBytes;
    if (outcome.connectFailure) flag = "UF";
    return finish(outcome.status ?? 503);
  }
  const body = await readBodyUpTo(req, RETRY_BUFFER_BYTES, (n) => {
    requestBytes += n;
  });
  // A body too large to keep streams through once: no retries and no mirror copy (Envoy's rule:
  // a request that outgrew the retry buffer is not retried).
  const replayable = Buffer.isBuffer(body);
  // Mirrors get a copy, fire-and-forget, with Envoy's "-shadow" suffix on the Host.
  for (const m of replayable ? (route.mirrors ?? []) : []) {
    const target = stages.pick(l7, {
      host: m.host,
      ...(m.subset ? { subset: m.subset } : {}),
      port: m.port ?? l7.port,
    });
    if (!target.ok) continue;
    const shadow = { ...headers, host: `${headers.host}-shadow` };
    const copy = {
      endpoint: target.endpoint,
      method: l7.method,
      path,
      headers: shadow,
      body,
      timeoutMs: 10_000,
    };
    void forwardOnce(ctx, copy).then((o) => {
      o.response?.resume();
      target.endpoint.done(
        o.status !== undefined ? { status: o.status } : { connectFailure: o.connectFailure === true },
      );
    });
  }
  // Envoy as Istio configures it retries on another host when there is one (previous_hosts).
  const tried = new Set<string>();
  for (let attempt = 0; ; attempt++) {
    const picked = stages.pick(l7, {
      host: route.host,
      ...(route.subset ? { subset: route.subset } : {}),
      port: route.port ?? l7.port,
      exclude: tried,
    });
    if (!picked.ok) return respond(picked.status, {}, picked.reason, picked.flag);
    upstreamHost = `${picked.endpoint.workload.name}:${picked.endpoint.port}`;
    tried.add(picked.endpoint.workload.uid);
    attempts++;
    const perTry = minDefined(
      route.retry.perTryTimeoutMs,
      deadline ? deadline - performance.now() : undefined,
    );
    const outcome = await forwardOnce(ctx, {
      endpoint: picked.endpoint,
      method: l7.method,
      path,
      headers,
      body,
      timeoutMs: perTry,
    });
    picked.endpoint.done(
      outcome.status !== undefined
        ? { status: outcome.status }
        : { connectFailure: outcome.connectFailure, reset: !outcome.connectFailure },
    );
    const retriesLeft = replayable && attempt < route.retry.attempts;
    const timedOutOverall = deadline !== undefined && performance.now() >= deadline;
    if (
      outcome.response &&
      !(retriesLeft && !timedOutOverall && route.retry.shouldRetry({ status: outcome.status! }))
    ) {
      const up = outcome.response;
      const out = responseHeaders(up.headers, route);
      res.writeHead(up.statusCode ?? 502, out);
      up.on("data", (c: Buffer) => {
        responseBytes += c.length;
      });
      up.pipe(res);
      await new Promise<void>((r) => res.once("close", () => r()));
      // The client left before the whole answer: the pooled connection cannot be reused.
      if (!up.complete) up.destroy();
      return finish(up.statusCode ?? 502);
    }
    outcome.response?.resume();
    if (timedOutOverall || (outcome.timedOut && !retriesLeft))
      return respond(504, {}, "upstream request timeout", "UT");
    if (
      !retriesLeft ||
      !route.retry.shouldRetry(
        outcome.status !== undefined
          ? { status: outcome.status }
          : { connectFailure: outcome.connectFailure, reset: true },
      )
    ) {
      if (outcome.status !== undefined) return respond(outcome.status, {}, "", "URX");
      return respond(
        503,
        {},
        `upstream connect error or disconnect/reset before headers. reset reason: ${outcome.error}`,
        outcome.connectFailure ? "UF" : "UC",
      );
    }
  }
}

interface Outcome {
  response?: IncomingMessage;
  status?: number;
  connectFailure?: boolean;
  timedOut?: boolean;
  error?: string;
}

/** One attempt of a request at one endpoint. */
interface Attempt {
  endpoint: EndpointPick;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: RequestBody;
  timeoutMs: number | undefined;
}

async function forwardOnce(ctx: HttpContext, attempt: Attempt): Promise<Outcome> {
  const first = await sendOnce(ctx, attempt);
  // A pooled connection the app closed while idle can fail a request before it was sent: that one
  // goes again on a fresh connection, as Envoy does, and is not a failure of the endpoint (only
  // when the body is still in hand to send again).
  if (first.staleConnection && Buffer.isBuffer(attempt.body)) return sendOnce(ctx, attempt);
  return first;
}

function sendOnce(
  ctx: HttpContext,
  { endpoint, method, path, headers, body, timeoutMs }: Attempt,
): Promise<Outcome & { staleConnection?: boolean }> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let answered = false;
    const r = httpRequest(
      {
        agent: ctx.agents.agentFor(endpoint, endpoint.connections),
        method,
        path,
        // A streamed body keeps the client's framing: its content-length, or chunked without one.
        headers: Buffer.isBuffer(body) ? { ...headers, "content-length": String(body.length) } : headers,
      },
      (res) => {
        answered = true;
        if (timer) clearTimeout(timer);
        resolve({ response: res, status: res.statusCode ?? 502 });
      },
    );
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () => {
          // An error, so the stream is reset rather than closed cleanly: the answer is abandoned.
          r.destroy(new Error("upstream request timeout"));
          resolve({ timedOut: true, error: "timeout" });
        },
        Math.max(1, timeoutMs),
      );
    }
    r.once("error", (err) => {
      if (timer) clearTimeout(timer);
      if (answered) return;
      if (err instanceof UpstreamError) {
        resolve({ connectFailure: err.connectFailure, error: err.message });
        return;
      }
      resolve({
        connectFailure: false,
        error: err.message,
        ...(r.reusedSocket && { staleConnection: true }),
      });
    });
    if (Buffer.isBuffer(body)) r.end(body);
    else {
      r.write(body.head);
      body.rest.pipe(r);
      // The client went away mid-body: the upstream request cannot complete either.
      body.rest.once("aborted", () => r.destroy(new Error("the client aborted the request body")));
    }
  });
}

function forwardHeaders(
  req: L7Request,
  route: Extract<RouteResult, { kind: "forward" }>,
  info: StreamInfo,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
  out.host = route.rewrite?.authority ?? req.authority;
  out["x-forwarded-proto"] = "http";
  // Envoy passes the verified peer identity upstream in XFCC (Istio: SANITIZE_SET).
  out["x-forwarded-client-cert"] = `URI=${info.sourcePrincipal}`;
  for (const ops of route.requestHeaders ?? []) applyOps(out, ops);
  return out;
}

function responseHeaders(
  headers: IncomingHttpHeaders,
  route: Extract<RouteResult, { kind: "forward" }>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(out)) flat[k] = Array.isArray(v) ? v.join(", ") : v;
  for (const ops of route.responseHeaders ?? []) applyOps(flat, ops);
  Object.assign(flat, route.corsHeaders ?? {});
  return flat;
}

export function applyOps(headers: Record<string, string>, ops: HeaderOps): void {
  for (const [k, v] of Object.entries(ops.set ?? {})) headers[k.toLowerCase()] = v;
  for (const [k, v] of Object.entries(ops.add ?? {})) {
    const key = k.toLowerCase();
    headers[key] = headers[key] ? `${headers[key]}, ${v}` : v;
  }
  for (const k of ops.remove ?? []) delete headers[k.toLowerCase()];
}

/**
 * HTTP/1.1 request bodies up to this are held in memory so a failed attempt can be retried (and
 * mirrored); a larger one streams to the upstream once. Envoy's retry buffer plays the same part.
 */
export const RETRY_BUFFER_BYTES = 1024 * 1024;

/** A whole body, or the first bytes of one too large to hold and the rest still to read. */
type RequestBody = Buffer | { head: Buffer; rest: IncomingMessage };

/** Reads the body while it fits in `limit`; past it, stops and hands back what it has. */
function readBodyUpTo(
  req: IncomingMessage,
  limit: number,
  onBytes: (n: number) => void,
): Promise<RequestBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      onBytes(c.length);
      chunks.push(c);
      size += c.length;
      if (size <= limit) return;
      req.pause();
      req.removeListener("data", onData);
      req.removeListener("end", onEnd);
      req.removeListener("error", reject);
      // The rest is counted as it streams through.
      req.on("data", (more: Buffer) => onBytes(more.length));
      resolve({ head: Buffer.concat(chunks), rest: req });
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", reject);
  });
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
