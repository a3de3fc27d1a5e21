// The pluggable L7 stages the request handler runs, in order: authenticate (RequestAuthentication)
// → authorize (AuthorizationPolicy) → route (VirtualService) → pick an endpoint (DestinationRule).
// `L7Config` builds them from what the control plane sent; defaults pass everything through.

import type { AmbientError, Service } from "@ambient/core";
import type { HeaderOps, L7Request } from "../model/request.js";
import type { UpstreamTarget } from "./upstream.js";

export interface AuthnResult {
  ok: boolean;
  status?: number;
  reason?: string;
  principal?: string;
  claims?: Record<string, unknown>;
  removeHeaders?: string[];
  addHeaders?: Record<string, string>;
}

export interface AuthzResult {
  allowed: boolean;
  policy?: string;
  reason: string;
}

export interface RetryPlan {
  attempts: number;
  perTryTimeoutMs?: number;
  shouldRetry(outcome: RetryOutcomeFacts): boolean;
}

/** What an attempt's outcome says to the retry policy (Envoy's retryOn conditions read these). */
export interface RetryOutcomeFacts {
  status?: number;
  /** grpc-status of a trailers-only answer. */
  grpcStatus?: number;
  reset?: boolean;
  connectFailure?: boolean;
  refusedStream?: boolean;
}

export type RouteResult =
  | {
      kind: "forward";
      name?: string;
      host: string;
      subset?: string;
      port?: number;
      rewrite?: { path?: string; authority?: string };
      requestHeaders?: HeaderOps[];
      responseHeaders?: HeaderOps[];
      timeoutMs?: number;
      retry: RetryPlan;
      fault?: { delayMs?: number; abortStatus?: number };
      mirrors?: { host: string; subset?: string; port?: number }[];
      corsHeaders?: Record<string, string>;
    }
  /** A local answer the route asks for (direct response, redirect, CORS preflight). */
  | { kind: "respond"; status: number; headers?: Record<string, string>; body?: string }
  /** A VirtualService owns the host and none of its rules matched (404 NR). */
  | { kind: "no-route" };

/** How connections to the endpoint are reused (DestinationRule connectionPool.http). */
export interface UpstreamConnectionPolicy {
  /** 1 disables keep-alive; Infinity: no limit. */
  maxRequestsPerConnection: number;
  /** Idle pooled connections close after this; Infinity: never. */
  idleTimeoutMs: number;
  /** connectionPool.tcp.maxConnectionDuration: not reused past this age. Absent: no limit. */
  maxConnectionDurationMs?: number;
  /** HTTP/2: streams per upstream session (DestinationRule http.maxConcurrentStreams). */
  maxConcurrentStreams?: number;
}

/** connectionPool.tcp limits of one opaque TCP connection (Infinity: none). */
export interface OpaqueConnectionLimits {
  idleTimeoutMs: number;
  maxConnectionDurationMs: number;
}

/**
 * The endpoint a request or connection goes to: a workload, or for a PASSTHROUGH service no
 * workload but the original destination `address` (see UpstreamTarget).
 */
export interface EndpointPick extends UpstreamTarget {
  /** From the cluster's DestinationRule, for opaque TCP; absent: the defaults in tcp.ts. */
  opaque?: OpaqueConnectionLimits;
  /** From the cluster's DestinationRule; absent: keep-alive with the default idle timeout. */
  connections?: UpstreamConnectionPolicy;
  /** Called with the outcome, for least-request accounting and outlier detection. */
  done(outcome: { status?: number; connectFailure?: boolean; reset?: boolean }): void;
  /**
   * A slot in the cluster's concurrent-retry budget (DestinationRule http.maxRetries or
   * retryBudget), held while the retry runs; undefined when the budget is spent (then Envoy does
   * not retry and returns what it has). Absent: no limit.
   */
  acquireRetry?(): (() => void) | undefined;
}

export interface Stages {
  authenticate(req: L7Request): Promise<AuthnResult>;
  authorize(req: L7Request, auth: AuthnResult): AuthzResult;
  /** An opaque TCP connection: L4 fields only (HTTP-only fields never allow, and widen a DENY). */
  authorizeTcp(req: L7Request): AuthzResult;
  route(req: L7Request): RouteResult;
  /** An endpoint of `host` for the request, or why there is none (a typed cluster error: UH, UO, NC, NR). */
  pick(
    req: L7Request,
    /**
     * `exclude`: hosts already tried by this request (Istio retries on another host). `opaque`: a
     * TCP connection, admitted by maxConnections alone (Envoy's tcp_proxy queues nothing).
     */
    target: { host: string; subset?: string; port: number; exclude?: ReadonlySet<string>; opaque?: boolean },
  ): { ok: true; endpoint: EndpointPick; service?: Service } | { ok: false; error: AmbientError };
}
