import { describe, expect, it } from "vitest";
import {
  compileRetryPolicy,
  parseRetryOn,
  type RetryOutcome,
  type RetryPolicy,
  shouldRetry,
} from "./retry.js";
import { ConfigProblems, type HttpRetry } from "./spec.js";

const view = (p: RetryPolicy) => ({
  attempts: p.attempts,
  perTryTimeoutMs: p.perTryTimeoutMs,
  on: [...p.on].sort(),
  statusCodes: [...p.statusCodes].sort(),
});

describe("compileRetryPolicy", () => {
  const defaults = [
    "cancelled",
    "connect-failure",
    "refused-stream",
    "retriable-status-codes",
    "unavailable",
  ];
  it.each<[string, HttpRetry | undefined, ReturnType<typeof view>]>([
    [
      "absent: Istio's defaults",
      undefined,
      { attempts: 2, perTryTimeoutMs: undefined, on: defaults, statusCodes: [503] },
    ],
    [
      "attempts 0 disables",
      { attempts: 0 },
      { attempts: 0, perTryTimeoutMs: undefined, on: [], statusCodes: [] },
    ],
    [
      "attempts only keeps the default conditions",
      { attempts: 5 },
      { attempts: 5, perTryTimeoutMs: undefined, on: defaults, statusCodes: [503] },
    ],
    [
      "retryOn replaces conditions and codes",
      { attempts: 3, perTryTimeout: "2s", retryOn: "gateway-error,connect-failure,refused-stream" },
      {
        attempts: 3,
        perTryTimeoutMs: 2000,
        on: ["connect-failure", "gateway-error", "refused-stream"],
        statusCodes: [],
      },
    ],
    [
      "numeric codes become retriable status codes",
      { attempts: 1, retryOn: "5xx, 503,429" },
      {
        attempts: 1,
        perTryTimeoutMs: undefined,
        on: ["5xx", "retriable-status-codes"],
        statusCodes: [429, 503],
      },
    ],
  ])("%s", (_name, spec, expected) => {
    expect(view(compileRetryPolicy(spec))).toEqual(expected);
  });

  it("keeps retryRemoteLocalities and reports a bad perTryTimeout", () => {
    const problems = new ConfigProblems();
    const p = compileRetryPolicy(
      { attempts: 2, perTryTimeout: "fast", retryRemoteLocalities: true },
      { object: "ns/vs", path: "r", problems },
    );
    expect(p.retryRemoteLocalities).toBe(true);
    expect(problems.list).toEqual([{ object: "ns/vs", path: "r.perTryTimeout", message: "not a duration" }]);
  });
});

describe("parseRetryOn", () => {
  it("only numbers Go knows as status codes count as codes", () => {
    const { on, statusCodes } = parseRetryOn("retriable-4xx,599,409");
    expect([...statusCodes]).toEqual([409]);
    expect([...on].sort()).toEqual(["599", "retriable-4xx", "retriable-status-codes"]);
  });
});

describe("shouldRetry", () => {
  const policy = (retryOn: string, attempts = 2) => compileRetryPolicy({ attempts, retryOn });
  const defaults = compileRetryPolicy(undefined);
  it.each<[string, RetryPolicy, RetryOutcome, boolean]>([
    ["default: 503", defaults, { status: 503 }, true],
    ["default: 500 is not retried", defaults, { status: 500 }, false],
    ["default: connect failure", defaults, { connectFailure: true }, true],
    ["default: refused stream", defaults, { refusedStream: true }, true],
    ["default: a plain reset is not retried", defaults, { reset: true }, false],
    ["default: gRPC UNAVAILABLE", defaults, { status: 200, grpcStatus: 14 }, true],
    ["default: gRPC CANCELLED", defaults, { grpcStatus: 1 }, true],
    ["default: gRPC INTERNAL is not", defaults, { grpcStatus: 13 }, false],
    ["5xx: any 5xx", policy("5xx"), { status: 500 }, true],
    ["5xx: a reset", policy("5xx"), { reset: true }, true],
    ["5xx: not a 4xx", policy("5xx"), { status: 429 }, false],
    ["gateway-error: 504", policy("gateway-error"), { status: 504 }, true],
    ["gateway-error: not 500", policy("gateway-error"), { status: 500 }, false],
    ["reset: connect failure counts as a reset", policy("reset"), { connectFailure: true }, true],
    ["connect-failure: not a reset", policy("connect-failure"), { reset: true }, false],
    ["retriable-4xx: 409", policy("retriable-4xx"), { status: 409 }, true],
    ["retriable-4xx: not 404", policy("retriable-4xx"), { status: 404 }, false],
    ["numeric codes", policy("429"), { status: 429 }, true],
    ["deadline-exceeded", policy("deadline-exceeded"), { grpcStatus: 4 }, true],
    ["resource-exhausted", policy("resource-exhausted"), { grpcStatus: 8 }, true],
    ["internal", policy("internal"), { grpcStatus: 13 }, true],
    ["success is never retried", policy("5xx,reset,retriable-4xx"), { status: 200 }, false],
    ["disabled policy never retries", compileRetryPolicy({ attempts: 0 }), { status: 503 }, false],
  ])("%s", (_name, p, outcome, expected) => {
    expect(shouldRetry(p, outcome)).toBe(expected);
  });
});
