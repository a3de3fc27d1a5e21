import { AmbientError } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { noHealthyUpstream, upstreamOverflow } from "../cluster/errors.js";
import { classify, WaypointErrorCode, waypointError } from "./errors.js";
import { UpstreamError } from "./upstream.js";

describe("classify: the waypoint's one map from a failure to the answer and its response flag", () => {
  it("maps each failure to Envoy's status, body and flag", () => {
    const cases: [unknown, number, string][] = [
      [waypointError(WaypointErrorCode.DENIED, "x"), 403, "DENY"],
      [waypointError(WaypointErrorCode.ROUTE_NOT_MATCHED, "x"), 404, "NR"],
      [waypointError(WaypointErrorCode.UPSTREAM_TIMEOUT, "x"), 504, "UT"],
      [waypointError(WaypointErrorCode.UPSTREAM_RESET, "x"), 503, "UC"],
      [new UpstreamError("refused", "UF", true), 503, "UF"],
      [upstreamOverflow("outbound|80||a", "request"), 503, "UO"],
      [noHealthyUpstream("outbound|80||a"), 503, "UH"],
      [waypointError(WaypointErrorCode.CONNECT_REFUSED, "x"), 403, "-"],
      [waypointError(WaypointErrorCode.UPGRADE_WITH_BODY, "x"), 400, "DPE"],
      // Opaque TCP reads only the flag.
      [waypointError(WaypointErrorCode.MAX_DURATION, "x"), 503, "DT"],
      [waypointError(WaypointErrorCode.DOWNSTREAM_CLOSED, "x"), 0, "DC"],
    ];
    for (const [err, status, flag] of cases) expect(classify(err)).toMatchObject({ status, flag });
    expect(classify(waypointError(WaypointErrorCode.DENIED, "x")).body).toBe("RBAC: access denied");
  });

  it("reads the status a failure carries (JWT, fault abort) and the stream-idle phase", () => {
    const jwt = waypointError(WaypointErrorCode.UNAUTHENTICATED, "x", {
      details: { status: 401, reason: "Jwt is expired" },
    });
    expect(classify(jwt)).toMatchObject({
      status: 401,
      body: "Jwt is expired",
      headers: { "www-authenticate": "Bearer" },
    });
    expect(
      classify(waypointError(WaypointErrorCode.FAULT_ABORT, "x", { details: { status: 418 } })),
    ).toMatchObject({
      status: 418,
      flag: "FI",
    });
    const idle = (requestComplete: boolean) =>
      waypointError(WaypointErrorCode.IDLE_TIMEOUT, "x", { details: { requestComplete } });
    expect(classify(idle(false))).toMatchObject({ status: 408, flag: "SI" });
    expect(classify(idle(true))).toMatchObject({ status: 504, flag: "SI" });
  });

  it("walks the cause chain; anything unknown broke mid-stream (UC), a bug (no code at all) logged as warn", () => {
    const wrapped = new Error("outer", {
      cause: new AmbientError("AMB_OTHER", "x", { cause: upstreamOverflow("c", "retry") }),
    });
    expect(classify(wrapped).flag).toBe("UO");
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(classify(reset)).toMatchObject({ status: 503, flag: "UC", level: "info" });
    expect(classify(new Error("bug"))).toMatchObject({ flag: "UC", level: "warn" });
  });
});
