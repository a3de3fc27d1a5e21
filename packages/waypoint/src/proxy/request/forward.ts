// Stages 6 and 7, pick and forward, with Envoy's retry semantics over either protocol: each attempt
// picks an endpoint not tried yet (Istio's previous_hosts), runs under the per-try and route
// timeouts, and is retried when the route's retryOn says so, the body is still in hand and the
// cluster's retry budget has room. A pooled connection found dead before any answer is sent again
// once on a fresh connection, whatever the route's policy (Go's transport does the same; Envoy
// answers 503 UC unless retryOn has `reset`): nothing was answered, so nothing is repeated.

import { hostPort, type Service } from "@ambient/core";
import type { L7Request } from "../../model/request.js";
import { NO_FLAG, RETRIES_EXHAUSTED_FLAG, RETRY_OVERFLOW_FLAG } from "../errors.js";
import type { EndpointPick, Stages } from "../stages.js";
import { upstreamHost } from "../upstream.js";
import type { AttemptRequest, Sender, UpstreamResponse } from "./attempt.js";
import type { ReplayBody } from "./body.js";
import type { Exchange } from "./exchange.js";
import type { ForwardPlan } from "./route.js";
import type { RequestClock } from "./timers.js";

export interface Forwarded {
  response: UpstreamResponse;
  endpoint: EndpointPick;
  /** The attempt's signal (per-try timeout included): the response body streams under it too. */
  signal: AbortSignal;
  /** Stops the attempt's timers; call once the response is over. */
  dispose(): void;
  flag: string;
}

export interface ForwardInput {
  stages: Stages;
  send: Sender;
  clock: RequestClock;
  exchange: Exchange;
  plan: ForwardPlan;
  request: AttemptRequest;
  body: ReplayBody;
}

export async function forward(input: ForwardInput): Promise<Forwarded> {
  const { stages, send, clock, exchange: ex, plan, request, body } = input;
  const l7 = ex.l7;
  const tried = new Set<string>();
  let retries = 0;
  let staleResent = false;
  let retrySlot: (() => void) | undefined;
  try {
    for (;;) {
      const { endpoint, service } = pick(stages, l7, plan, tried);
      ex.upstream = {
        ...(endpoint.workload ? { workload: endpoint.workload } : {}),
        ...(service ? { service } : {}),
      };
      // A PASSTHROUGH service's original destination has no workload: its address names it.
      ex.upstreamHost = endpoint.workload
        ? `${endpoint.workload.name}:${endpoint.port}`
        : hostPort(upstreamHost(endpoint), endpoint.port);
      tried.add(endpoint.workload?.uid ?? upstreamHost(endpoint));
      ex.attempts++;
      const attempt = clock.attempt(plan.retry.perTryTimeoutMs);
      let result = await send(endpoint, request, body, attempt.signal, {});
      if (!result.ok && result.stale && !staleResent && body.replayable && !attempt.signal.aborted) {
        staleResent = true;
        result = await send(endpoint, request, body, attempt.signal, { fresh: true });
      }
      const canRetry = retries < plan.retry.attempts && body.replayable && !clock.signal.aborted;
      if (result.ok) {
        const { response } = result;
        const facts = {
          status: response.status,
          ...(response.grpcStatus !== undefined ? { grpcStatus: response.grpcStatus } : {}),
        };
        const retriable = response.upgrade === undefined && plan.retry.shouldRetry(facts);
        const slot = canRetry && retriable ? takeRetrySlot(endpoint) : undefined;
        if (!slot) {
          const flag = !retriable
            ? NO_FLAG
            : canRetry
              ? RETRY_OVERFLOW_FLAG
              : retries > 0
                ? RETRIES_EXHAUSTED_FLAG
                : NO_FLAG;
          return { response, endpoint, signal: attempt.signal, dispose: attempt.dispose, flag };
        }
        response.discard();
        endpoint.done({ status: response.status });
        attempt.dispose();
        retrySlot?.();
        retrySlot = slot;
      } else {
        endpoint.done(result.facts.connectFailure ? { connectFailure: true } : { reset: true });
        attempt.dispose();
        // The request's own clock (route timeout, stream idle, the client gone) ends it for good.
        if (clock.signal.aborted) throw clock.signal.reason;
        const slot =
          canRetry && !body.failure && plan.retry.shouldRetry(result.facts)
            ? takeRetrySlot(endpoint)
            : undefined;
        if (!slot) throw result.error;
        retrySlot?.();
        retrySlot = slot;
      }
      retries++;
    }
  } finally {
    retrySlot?.();
  }
}

function pick(
  stages: Stages,
  l7: L7Request,
  plan: ForwardPlan,
  tried: ReadonlySet<string>,
): { endpoint: EndpointPick; service?: Service } {
  const picked = stages.pick(l7, {
    host: plan.host,
    ...(plan.subset ? { subset: plan.subset } : {}),
    port: plan.port ?? l7.port,
    exclude: tried,
  });
  if (!picked.ok) throw picked.error;
  return { endpoint: picked.endpoint, ...(picked.service ? { service: picked.service } : {}) };
}

/** A retry slot from the cluster's budget; undefined when it is spent (Envoy then keeps what it has). */
function takeRetrySlot(endpoint: EndpointPick): (() => void) | undefined {
  if (!endpoint.acquireRetry) return () => {};
  return endpoint.acquireRetry();
}
