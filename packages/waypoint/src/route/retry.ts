// HTTPRetry → the retry policy the proxy engine runs, with Istio's defaults when a route says
// nothing, and Envoy's reading of each `retryOn` condition for deciding whether an attempt's
// outcome deserves another try. The engine owns the attempt counter and the backoff timer.

import { parseGoDuration } from "./duration.js";
import type { ConfigProblems, HttpRetry } from "./spec.js";

export interface RetryPolicy {
  /** Retries after the first attempt (Envoy's num_retries); 0 disables retrying. */
  attempts: number;
  perTryTimeoutMs?: number;
  /** Retry conditions (`5xx`, `connect-failure`, `unavailable`, ...), numeric codes removed. */
  on: Set<string>;
  /** Codes for the `retriable-status-codes` condition. */
  statusCodes: Set<number>;
  /** Prefer other localities on retry (Envoy's previous_priorities retry plugin). */
  retryRemoteLocalities?: boolean;
}

export interface RetryOutcome {
  status?: number;
  grpcStatus?: number;
  reset?: boolean;
  connectFailure?: boolean;
  refusedStream?: boolean;
}

/** Istio's mesh default (pilot route/retry): 2 retries, 503 counted as retriable. */
export const DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
const DEFAULT_ATTEMPTS = 2;
const DEFAULT_STATUS_CODES = [503];

export function defaultRetryPolicy(): RetryPolicy {
  return {
    attempts: DEFAULT_ATTEMPTS,
    on: new Set(DEFAULT_RETRY_ON.split(",")),
    statusCodes: new Set(DEFAULT_STATUS_CODES),
  };
}

function noRetryPolicy(): RetryPolicy {
  return { attempts: 0, on: new Set(), statusCodes: new Set() };
}

/**
 * Istio's ConvertPolicy: absent → defaults; `attempts <= 0` → no retries; otherwise the
 * defaults with `attempts`, `retryOn` (when non-empty) and `perTryTimeout` overridden.
 */
export function compileRetryPolicy(
  spec: HttpRetry | undefined,
  where?: { object: string; path: string; problems: ConfigProblems },
): RetryPolicy {
  if (spec === undefined || spec === null) return defaultRetryPolicy();
  if (typeof spec.attempts !== "number" || spec.attempts <= 0) return noRetryPolicy();

  const policy = defaultRetryPolicy();
  policy.attempts = spec.attempts;
  if (spec.retryOn !== undefined && spec.retryOn.trim() !== "") {
    const parsed = parseRetryOn(spec.retryOn);
    policy.on = parsed.on;
    policy.statusCodes = parsed.statusCodes;
  }
  if (spec.perTryTimeout !== undefined) {
    const ms = parseGoDuration(spec.perTryTimeout);
    if (ms === undefined) where?.problems.add(where.object, `${where.path}.perTryTimeout`, "not a duration");
    else if (ms > 0) policy.perTryTimeoutMs = ms;
  }
  if (spec.retryRemoteLocalities === true) policy.retryRemoteLocalities = true;
  return policy;
}

/**
 * Splits a `retryOn` list. Parts that are known HTTP status codes become retriable status codes
 * (and imply `retriable-status-codes`, as Istio adds it); everything else is a condition.
 */
export function parseRetryOn(text: string): { on: Set<string>; statusCodes: Set<number> } {
  const on = new Set<string>();
  const statusCodes = new Set<number>();
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const code = /^\d+$/.test(part) ? Number(part) : Number.NaN;
    if (KNOWN_STATUS_CODES.has(code)) statusCodes.add(code);
    else on.add(part);
  }
  if (statusCodes.size > 0) on.add("retriable-status-codes");
  return { on, statusCodes };
}

const GATEWAY_ERRORS = new Set([502, 503, 504]);
/** Envoy's retriable-4xx retries only 409 Conflict, the one 4xx that a retry can fix. */
const RETRIABLE_4XX = new Set([409]);
const GRPC_CONDITIONS: Record<string, number> = {
  cancelled: 1,
  "deadline-exceeded": 4,
  "resource-exhausted": 8,
  internal: 13,
  unavailable: 14,
};

/** Envoy's decision for one failed attempt; the caller still counts attempts and time budget. */
export function shouldRetry(policy: RetryPolicy, outcome: RetryOutcome): boolean {
  if (policy.attempts <= 0) return false;
  const on = policy.on;
  const reset = outcome.reset === true || outcome.connectFailure === true || outcome.refusedStream === true;

  if (outcome.connectFailure && on.has("connect-failure")) return true;
  if (outcome.refusedStream && on.has("refused-stream")) return true;
  // Envoy counts any upstream reset (connect failures included) as a would-be 5xx.
  if (reset && (on.has("5xx") || on.has("gateway-error") || on.has("reset"))) return true;

  const status = outcome.status;
  if (status !== undefined) {
    if (on.has("5xx") && status >= 500 && status <= 599) return true;
    if (on.has("gateway-error") && GATEWAY_ERRORS.has(status)) return true;
    if (on.has("retriable-4xx") && RETRIABLE_4XX.has(status)) return true;
    if (on.has("retriable-status-codes") && policy.statusCodes.has(status)) return true;
  }
  if (outcome.grpcStatus !== undefined) {
    for (const [condition, code] of Object.entries(GRPC_CONDITIONS)) {
      if (outcome.grpcStatus === code && on.has(condition)) return true;
    }
  }
  return false;
}

/** Go's http.StatusText table: Istio only treats a number in retryOn as a code if Go knows it. */
const KNOWN_STATUS_CODES = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307,
  308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
  422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);
