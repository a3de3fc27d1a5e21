import { AmbientError } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { noHealthyUpstream, upstreamOverflow } from "../../cluster/errors.js";
import { UpstreamError } from "../upstream.js";
import { classify, RequestErrorCode, requestError } from "./errors.js";

describe("classify: the one map from a request failure to the answer and its response flag", () => {
  it("maps each failure to Envoy's status, body and flag", () => {
    const cases: [unknown, number, string][] = [
      [requestError(RequestErrorCode.DENIED, "x"), 403, "DENY"],
      [requestError(RequestErrorCode.NO_ROUTE, "x"), 404, "NR"],
      [requestError(RequestErrorCode.UPSTREAM_TIMEOUT, "x"), 504, "UT"],
      [requestError(RequestErrorCode.UPSTREAM_RESET, "x"), 503, "UC"],
      [new UpstreamError("refused", "UF", true), 503, "UF"],
      [upstreamOverflow("outbound|80||a", "request"), 503, "UO"],
      [noHealthyUpstream("outbound|80||a"), 503, "UH"],
      [requestError(RequestErrorCode.CONNECT_REFUSED, "x"), 403, "-"],
      [requestError(RequestErrorCode.UPGRADE_WITH_BODY, "x"), 400, "DPE"],
    ];
    for (const [err, status, flag] of cases) expect(classify(err)).toMatchObject({ status, flag });
    expect(classify(requestError(RequestErrorCode.DENIED, "x")).body).toBe("RBAC: access denied");
  });

  it("reads the status a failure carries (JWT, fault abort) and the stream-idle phase", () => {
    const jwt = requestError(RequestErrorCode.UNAUTHENTICATED, "x", {
      details: { status: 401, reason: "Jwt is expired" },
    });
    expect(classify(jwt)).toMatchObject({
      status: 401,
      body: "Jwt is expired",
      headers: { "www-authenticate": "Bearer" },
    });
    expect(
      classify(requestError(RequestErrorCode.FAULT_ABORT, "x", { details: { status: 418 } })),
    ).toMatchObject({
      status: 418,
      flag: "FI",
    });
    const idle = (requestComplete: boolean) =>
      requestError(RequestErrorCode.STREAM_IDLE_TIMEOUT, "x", { details: { requestComplete } });
    expect(classify(idle(false))).toMatchObject({ status: 408, flag: "SI" });
    expect(classify(idle(true))).toMatchObject({ status: 504, flag: "SI" });
  });

  it("walks the cause chain, and calls anything unknown a 500", () => {
    const wrapped = new Error("outer", {
      cause: new AmbientError("AMB_OTHER", "x", { cause: upstreamOverflow("c", "retry") }),
    });
    expect(classify(wrapped).flag).toBe("UO");
    expect(classify(new Error("bug"))).toMatchObject({ status: 500, level: "warn" });
  });
});
