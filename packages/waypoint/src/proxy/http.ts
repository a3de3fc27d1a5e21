// One HTTP request through the waypoint, as a chain of stages (proxy/request/): build → authenticate
// → authorize → route → fault → pick and forward (HTTP/1.1, HTTP/2, with retries) → respond, or
// switch protocols on a 101. Every request takes the same stages whatever its protocol or headers
// (an Upgrade or a CONNECT included), every failure is a typed error that `classify` turns into the
// answer, and every request ends in exactly one metrics sample and access-log line.

import { classify, hasCode, type Logger, WaypointErrorCode } from "@ambient/core";
import type { AccessLog } from "@ambient/dataplane";
import type { HttpMetrics } from "../telemetry/metrics.js";
import { waypointError } from "./errors.js";
import type { Sender } from "./request/attempt.js";
import { authenticate } from "./request/authenticate.js";
import { authorize } from "./request/authorize.js";
import { RETRY_BUFFER_BYTES, ReplayBody } from "./request/body.js";
import { buildRequest } from "./request/build.js";
import { cutOff, type Downstream, localReply, responseDone } from "./request/downstream.js";
import { Exchange, type StreamInfo } from "./request/exchange.js";
import { forward } from "./request/forward.js";
import { upstreamRequest } from "./request/headers.js";
import { mirror } from "./request/mirror.js";
import { relay } from "./request/respond.js";
import { injectFault, route } from "./request/route.js";
import { RequestClock } from "./request/timers.js";
import { switchProtocols } from "./request/upgrade.js";
import type { Stages } from "./stages.js";
import type { RequestBounds } from "./timeouts.js";

export type { StreamInfo } from "./request/exchange.js";
export { RETRY_BUFFER_BYTES };

export interface HttpContext {
  stages: () => Stages;
  /** One attempt over HTTP/1.1 keep-alive connections per endpoint. */
  sendHttp1: Sender;
  /** One attempt over pooled HTTP/2 sessions per endpoint (h2c, gRPC). */
  sendH2: Sender;
  metrics: HttpMetrics;
  logger: Logger;
  accessLog: AccessLog;
  bounds: RequestBounds;
}

export async function handleHttp(ctx: HttpContext, info: StreamInfo, down: Downstream): Promise<void> {
  const { l7, upgrade, connect, upgradeWithBody } = buildRequest(down.req, info);
  const ex = new Exchange(l7, info);
  const stages = ctx.stages();
  const clock = new RequestClock(ctx.bounds.streamIdleMs);
  // node:http emits 'close' after every finished response too: only an unfinished one means the
  // client went away (and only then is an error worth building: this runs once per request).
  const onClientGone = () => {
    if (down.res.writableFinished) return;
    clock.abort(waypointError(WaypointErrorCode.DOWNSTREAM_CLOSED, "the client went away"));
  };
  down.res.once("close", onClientGone);
  try {
    if (connect)
      throw waypointError(WaypointErrorCode.CONNECT_REFUSED, `${l7.method} ${l7.authority} refused`);
    if (upgradeWithBody)
      throw waypointError(
        WaypointErrorCode.UPGRADE_WITH_BODY,
        "an Upgrade request with a body (Content-Length or Transfer-Encoding)",
      );
    const auth = await authenticate(stages, l7);
    authorize(stages, l7, auth);
    const decision = route(stages, l7);
    if (decision.kind === "respond") {
      localReply(down, ex, decision.status, decision.headers ?? {}, decision.body ?? "");
      await responseDone(down);
      return;
    }
    const plan = decision;
    ex.routeName = plan.name ?? "";
    clock.setRouteTimeout(plan.timeoutMs);
    await injectFault(plan, clock.signal);
    clock.signal.throwIfAborted();
    const body = new ReplayBody(down.req, RETRY_BUFFER_BYTES, (n) => {
      ex.requestBytes += n;
      clock.touch();
    });
    body.once("complete", () => clock.requestDone());
    const send = down.protocol === "h2" ? ctx.sendH2 : ctx.sendHttp1;
    // Only a request node:http stopped at can switch protocols; any other is sent without Upgrade.
    const canSwitch = down.protocol === "http1" && down.upgrade !== undefined;
    const request = upstreamRequest(l7, plan, info, canSwitch ? upgrade : []);
    mirror(stages, send, l7, plan, request, body);
    const forwarded = await forward({ stages, send, clock, exchange: ex, plan, request, body });
    try {
      if (forwarded.response.upgrade) {
        // From here the client's connection is the tunnel's: its closing is the tunnel's end.
        down.res.removeListener("close", onClientGone);
        await switchProtocols(down, ex, plan, forwarded, clock);
      } else {
        await relay(down, ex, plan, forwarded, clock);
        forwarded.endpoint.done({ status: forwarded.response.status });
      }
    } finally {
      forwarded.dispose();
    }
  } catch (err) {
    fail(down, ex, err);
    await responseDone(down);
  } finally {
    clock.dispose();
    down.res.removeListener("close", onClientGone);
    ex.record(ctx);
  }
}

/** The one way a failed request is answered: what `classify` says, or a cut-off once headers went out. */
function fail(down: Downstream, ex: Exchange, err: unknown): void {
  const c = classify(err);
  ex.fail(err);
  if (hasCode(err, WaypointErrorCode.DOWNSTREAM_CLOSED)) {
    cutOff(down);
    return;
  }
  localReply(down, ex, c.status, c.headers ?? {}, c.body);
}
