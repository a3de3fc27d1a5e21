import { describe, expect, it } from "vitest";
import { compileFault, type FaultPolicy, faultApplies, mirrorPercentage } from "./fault.js";
import { ConfigProblems, type HttpFaultInjection } from "./spec.js";

function compile(spec: HttpFaultInjection): { fault: FaultPolicy | undefined; problems: string[] } {
  const problems = new ConfigProblems();
  const fault = compileFault(spec, { object: "ns/vs", path: "fault", problems });
  return { fault, problems: problems.list.map((p) => p.path) };
}

describe("compileFault", () => {
  it.each<[string, HttpFaultInjection, FaultPolicy | undefined]>([
    // bookinfo: virtual-service-ratings-test-delay.yaml
    [
      "delay with percentage",
      { delay: { fixedDelay: "7s", percentage: { value: 100 } } },
      { delay: { ms: 7000, percentage: 100 } },
    ],
    [
      "delay without percentage applies to 0%",
      { delay: { fixedDelay: "5s" } },
      { delay: { ms: 5000, percentage: 0 } },
    ],
    [
      "deprecated integer percent",
      { delay: { fixedDelay: "5s", percent: 20 } },
      { delay: { ms: 5000, percentage: 20 } },
    ],
    // bookinfo: virtual-service-ratings-test-abort.yaml
    [
      "abort with percentage",
      { abort: { httpStatus: 500, percentage: { value: 100 } } },
      { abort: { httpStatus: 500, percentage: 100 } },
    ],
    [
      "abort without percentage applies to 0%",
      { abort: { httpStatus: 400 } },
      { abort: { httpStatus: 400, percentage: 0 } },
    ],
    [
      "fractional percentage",
      { abort: { httpStatus: 503, percentage: { value: 0.1 } } },
      { abort: { httpStatus: 503, percentage: 0.1 } },
    ],
    [
      "gRPC status by name",
      { abort: { grpcStatus: "UNAVAILABLE", percentage: { value: 50 } } },
      { abort: { grpcStatus: 14, percentage: 50 } },
    ],
    [
      "delay and abort together",
      {
        delay: { fixedDelay: "100ms", percentage: { value: 10 } },
        abort: { httpStatus: 503, percentage: { value: 5 } },
      },
      { delay: { ms: 100, percentage: 10 }, abort: { httpStatus: 503, percentage: 5 } },
    ],
  ])("%s", (_name, spec, expected) => {
    expect(compile(spec)).toEqual({ fault: expected, problems: [] });
  });

  it("reports unreadable durations and unknown gRPC codes", () => {
    expect(compile({ delay: { fixedDelay: "later" }, abort: { grpcStatus: "NOPE" } })).toEqual({
      fault: undefined,
      problems: ["fault.delay.fixedDelay", "fault.abort.grpcStatus"],
    });
  });
});

describe("faultApplies", () => {
  it.each<[number | undefined, number, boolean]>([
    [undefined, 0, false],
    [0, 0, false],
    [100, 0.999999, true],
    [50, 0.49, true],
    [50, 0.5, false],
    [0.1, 0.0009, true],
    [0.1, 0.0011, false],
  ])("percentage %s with random %s → %s", (percentage, r, expected) => {
    expect(faultApplies(percentage, () => r)).toBe(expected);
  });
});

describe("mirrorPercentage", () => {
  it("defaults to 100 and treats an explicit zero as off", () => {
    expect(mirrorPercentage(undefined)).toBe(100);
    expect(mirrorPercentage({ value: 25 })).toBe(25);
    expect(mirrorPercentage({ value: 0 })).toBeUndefined();
    expect(mirrorPercentage(undefined, 40)).toBe(40);
    expect(mirrorPercentage(undefined, 0)).toBeUndefined();
  });
});
