// Fault injection and mirroring percentages. Both are decided per request by the engine with
// the injected random source (`faultApplies`), so a routing decision stays deterministic apart
// from the weighted pick; here they are only compiled into plain numbers.

import { parseGoDuration } from "./duration.js";
import type { ConfigProblems, HttpFaultInjection, Percent } from "./spec.js";

export interface FaultPolicy {
  delay?: { ms: number; percentage: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percentage: number };
}

/** gRPC status names as Istio's `abort.grpcStatus` spells them. */
const GRPC_STATUS: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/**
 * A missing `percentage` means 0%: Istio falls back to the deprecated integer `percent` (0 when
 * unset) for delays and leaves Envoy's abort fraction at its zero default. The API docs say
 * "all requests" — the data plane has never done that.
 */
export function compileFault(
  spec: HttpFaultInjection | undefined,
  where: { object: string; path: string; problems: ConfigProblems },
): FaultPolicy | undefined {
  if (!spec) return undefined;
  const out: FaultPolicy = {};
  if (spec.delay && typeof spec.delay.fixedDelay === "string") {
    const ms = parseGoDuration(spec.delay.fixedDelay);
    if (ms === undefined) {
      where.problems.add(where.object, `${where.path}.delay.fixedDelay`, "not a duration");
    } else {
      const percentage = spec.delay.percentage ? percentOf(spec.delay.percentage) : (spec.delay.percent ?? 0);
      out.delay = { ms, percentage: clampPercent(percentage) };
    }
  }
  if (spec.abort) {
    const percentage = clampPercent(percentOf(spec.abort.percentage));
    if (typeof spec.abort.httpStatus === "number") {
      out.abort = { httpStatus: spec.abort.httpStatus, percentage };
    } else if (spec.abort.grpcStatus !== undefined) {
      const code =
        typeof spec.abort.grpcStatus === "number"
          ? spec.abort.grpcStatus
          : GRPC_STATUS[spec.abort.grpcStatus.toUpperCase()];
      if (code === undefined) {
        where.problems.add(where.object, `${where.path}.abort.grpcStatus`, "unknown gRPC status");
      } else {
        out.abort = { grpcStatus: code, percentage };
      }
    }
  }
  return out.delay || out.abort ? out : undefined;
}

/**
 * Mirror share: absent means all traffic (100%); an explicit 0 turns mirroring off (undefined).
 * `legacy` is the deprecated integer `mirrorPercent`, consulted only without `percentage`.
 */
export function mirrorPercentage(percentage: Percent | undefined, legacy?: number): number | undefined {
  if (percentage !== undefined && percentage !== null) {
    const value = percentOf(percentage);
    return value > 0 ? clampPercent(value) : undefined;
  }
  if (typeof legacy === "number") return legacy > 0 ? clampPercent(legacy) : undefined;
  return 100;
}

/**
 * Whether this request falls in `percentage` (0..100) of traffic, with `random()` in [0, 1).
 * Undefined is 0%. Used for fault delay/abort and for mirrors.
 */
export function faultApplies(percentage: number | undefined, random: () => number): boolean {
  if (percentage === undefined || percentage <= 0) return false;
  if (percentage >= 100) return true;
  return random() * 100 < percentage;
}

function percentOf(p: Percent | undefined): number {
  return typeof p?.value === "number" ? p.value : 0;
}

function clampPercent(value: number): number {
  return Math.min(100, Math.max(0, value));
}
