import { describe, expect, it } from "vitest";
import { classify, DEFAULT_CLASSIFICATION, isClassified, Socks5Reply } from "./classify.js";
import {
  ClusterErrorCode,
  DATA_PATH_CODES,
  HboneErrorCode,
  ProxyErrorCode,
  Socks5ErrorCode,
  WaypointErrorCode,
} from "./codes.js";
import { AmbientError } from "./errors.js";

const err = (code: string, details: Record<string, unknown> = {}, cause?: unknown) =>
  new AmbientError(code, `${code} happened`, { details, ...(cause === undefined ? {} : { cause }) });
const sys = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

describe("classify: one table for every data-path failure", () => {
  it.each(DATA_PATH_CODES)("%s has a row, and a well-formed classification", (code) => {
    expect(isClassified(code)).toBe(true);
    const c = classify(err(code));
    expect(Number.isInteger(c.status) && c.status >= 0 && c.status < 600).toBe(true);
    expect(c.flag).toMatch(/^(-|[A-Z]{2,4})$/);
    expect(Object.values(Socks5Reply)).toContain(c.socks5);
    expect(c.socks5).not.toBe(Socks5Reply.SUCCEEDED);
    expect(["debug", "info", "warn"]).toContain(c.level);
    expect(["reset", "close"]).toContain(c.end);
  });

  it("codes are unique across the catalogue", () => {
    expect(new Set(DATA_PATH_CODES).size).toBe(DATA_PATH_CODES.length);
  });

  it.each<[string, Record<string, unknown>, number, string]>([
    // ztunnel's HBONE answers and flags
    [ProxyErrorCode.BAD_REQUEST, {}, 400, "DPE"],
    [ProxyErrorCode.OWN_PORT, {}, 400, "DPE"],
    [ProxyErrorCode.UNKNOWN_DESTINATION, {}, 503, "NR"],
    [ProxyErrorCode.DENIED, {}, 401, "DENY"],
    [ProxyErrorCode.POLICY_CHANGED, {}, 401, "DENY"],
    [ProxyErrorCode.UPSTREAM_CONNECT, {}, 503, "UF"],
    [ProxyErrorCode.NO_HEALTHY_UPSTREAM, {}, 503, "UH"],
    [ProxyErrorCode.DRAINED, {}, 503, "DC"],
    // the waypoint's local replies
    [WaypointErrorCode.DENIED, {}, 403, "DENY"],
    [WaypointErrorCode.ROUTE_NOT_MATCHED, {}, 404, "NR"],
    [WaypointErrorCode.UPSTREAM_TIMEOUT, {}, 504, "UT"],
    [WaypointErrorCode.UPSTREAM_RESET, {}, 503, "UC"],
    [WaypointErrorCode.UPSTREAM_CONNECT, {}, 503, "UF"],
    [WaypointErrorCode.CONNECT_REFUSED, {}, 403, "-"],
    [WaypointErrorCode.UPGRADE_WITH_BODY, {}, 400, "DPE"],
    [WaypointErrorCode.MAX_DURATION, {}, 503, "DT"],
    [WaypointErrorCode.DOWNSTREAM_CLOSED, {}, 0, "DC"],
    [WaypointErrorCode.NOT_SERVED, {}, 503, "NR"],
    [WaypointErrorCode.FAULT_ABORT, { status: 418 }, 418, "FI"],
    [WaypointErrorCode.UNAUTHENTICATED, { status: 401 }, 401, "UAEX"],
    [WaypointErrorCode.IDLE_TIMEOUT, { requestComplete: false }, 408, "SI"],
    [WaypointErrorCode.IDLE_TIMEOUT, { requestComplete: true }, 504, "SI"],
    [ClusterErrorCode.OVERFLOW, {}, 503, "UO"],
    [ClusterErrorCode.NO_HEALTHY_UPSTREAM, {}, 503, "UH"],
    [ClusterErrorCode.CLUSTER_NOT_FOUND, {}, 503, "NC"],
    [ClusterErrorCode.UNKNOWN_DESTINATION, { host: "x" }, 503, "NR"],
    // a peer's HBONE answer, as the side that connected out reads it
    [HboneErrorCode.CONNECT_REFUSED, { status: 401 }, 401, "DENY"],
    [HboneErrorCode.CONNECT_REFUSED, { status: 503 }, 503, "UF"],
  ])("%s %j → %d %s", (code, details, status, flag) => {
    expect(classify(err(code, details))).toMatchObject({ status, flag });
  });

  it("gives the waypoint's local replies Envoy's bodies and headers", () => {
    expect(classify(err(WaypointErrorCode.DENIED)).body).toBe("RBAC: access denied");
    expect(
      classify(err(WaypointErrorCode.UNAUTHENTICATED, { status: 401, reason: "Jwt is expired" })),
    ).toMatchObject({
      body: "Jwt is expired",
      headers: { "www-authenticate": "Bearer" },
    });
    expect(classify(err(ClusterErrorCode.NO_HEALTHY_UPSTREAM)).body).toBe("no healthy upstream");
  });

  it.each<[unknown, number]>([
    [err(ProxyErrorCode.DENIED), Socks5Reply.NOT_ALLOWED],
    [err(HboneErrorCode.CONNECT_REFUSED, { status: 401 }), Socks5Reply.NOT_ALLOWED],
    [err(HboneErrorCode.CONNECT_REFUSED, { status: 403 }), Socks5Reply.NOT_ALLOWED],
    [err(HboneErrorCode.CONNECT_REFUSED, { status: 503 }), Socks5Reply.CONNECTION_REFUSED],
    [err(HboneErrorCode.CONNECT_REFUSED, { status: 504 }), Socks5Reply.TTL_EXPIRED],
    [err(HboneErrorCode.CONNECT_REFUSED, { status: 500 }), Socks5Reply.GENERAL_FAILURE],
    [err(HboneErrorCode.TIMEOUT), Socks5Reply.TTL_EXPIRED],
    [err(ProxyErrorCode.NO_ROUTE), Socks5Reply.HOST_UNREACHABLE],
    [err(ProxyErrorCode.NO_HEALTHY_UPSTREAM), Socks5Reply.HOST_UNREACHABLE],
    [sys("ENOTFOUND"), Socks5Reply.HOST_UNREACHABLE],
    [sys("EHOSTUNREACH"), Socks5Reply.HOST_UNREACHABLE],
    [sys("ENETUNREACH"), Socks5Reply.NETWORK_UNREACHABLE],
    [sys("ECONNREFUSED"), Socks5Reply.CONNECTION_REFUSED],
    [sys("ETIMEDOUT"), Socks5Reply.TTL_EXPIRED],
    [sys("ECONNRESET"), Socks5Reply.GENERAL_FAILURE],
    [err(Socks5ErrorCode.COMMAND_NOT_SUPPORTED), Socks5Reply.COMMAND_NOT_SUPPORTED],
    [err(Socks5ErrorCode.ADDRESS_TYPE_NOT_SUPPORTED), Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED],
    [new Error("plain"), Socks5Reply.GENERAL_FAILURE],
    [undefined, Socks5Reply.GENERAL_FAILURE],
  ])("SOCKS5 reply for %s → %d", (e, reply) => {
    expect(classify(e).socks5).toBe(reply);
  });

  it("combines rows along the cause chain: the outer error's flag, the inner one's SOCKS5 reply", () => {
    const wrapped = err(ProxyErrorCode.UPSTREAM_CONNECT, {}, sys("ECONNREFUSED"));
    expect(classify(wrapped)).toMatchObject({
      flag: "UF",
      status: 503,
      socks5: Socks5Reply.CONNECTION_REFUSED,
    });
    const denied = err(
      ProxyErrorCode.UPSTREAM_CONNECT,
      {},
      err(HboneErrorCode.CONNECT_REFUSED, { status: 401 }),
    );
    expect(classify(denied)).toMatchObject({ flag: "UF", socks5: Socks5Reply.NOT_ALLOWED });
    // An uncoded wrapper is transparent.
    expect(classify(new Error("outer", { cause: err(ClusterErrorCode.OVERFLOW) })).flag).toBe("UO");
  });

  it("logs a known network failure at info and an uncoded error (a bug of ours) at warn", () => {
    expect(classify(sys("ECONNRESET"))).toMatchObject({ status: 503, flag: "UC", level: "info" });
    expect(classify(new Error("bug"))).toEqual(DEFAULT_CLASSIFICATION);
  });

  it("logs a peer's failed handshake on our server lower than our own failed connect", () => {
    expect(classify(err(HboneErrorCode.TLS)).level).toBe("warn");
    expect(classify(err(HboneErrorCode.TLS), "server").level).toBe("debug");
    expect(classify(err(HboneErrorCode.RESET_FLOOD), "server").level).toBe("warn");
  });

  it("resets denied and broken connections, closes drained and timed-out ones", () => {
    expect(classify(err(ProxyErrorCode.DENIED)).end).toBe("reset");
    expect(classify(err(WaypointErrorCode.UPSTREAM_RESET)).end).toBe("reset");
    expect(classify(err(ProxyErrorCode.DRAINED)).end).toBe("close");
    expect(classify(err(WaypointErrorCode.IDLE_TIMEOUT)).end).toBe("close");
  });
});
