// Stage 8, respond: the upstream's answer relayed to the client — response header edits and CORS,
// the body as it streams (with backpressure both ways), HTTP/2 trailers (gRPC status) — under the
// request's clock. A failure after the headers went out cannot become an error answer: the client's
// stream is cut off and the access log says why.

import type { IncomingHttpHeaders } from "node:http";
import { WaypointErrorCode } from "@ambient/core";
import { waypointError } from "../errors.js";
import { cutOff, type Downstream, downstreamGone } from "./downstream.js";
import type { Exchange } from "./exchange.js";
import type { Forwarded } from "./forward.js";
import { downstreamHeaders } from "./headers.js";
import type { ForwardPlan } from "./route.js";
import type { RequestClock } from "./timers.js";

export function relay(
  down: Downstream,
  ex: Exchange,
  plan: ForwardPlan,
  forwarded: Forwarded,
  clock: RequestClock,
): Promise<void> {
  const { response: up, signal } = forwarded;
  ex.status = up.status;
  ex.flag = forwarded.flag;
  if (downstreamGone(down)) {
    up.discard();
    return Promise.resolve();
  }
  const headers = downstreamHeaders(up.headers, plan);
  if (down.protocol === "h2") down.res.writeHead(up.status, headers);
  else down.res.writeHead(up.status, headers);
  clock.touch();
  const res = down.res as unknown as NodeJS.WritableStream & { once(e: string, l: () => void): unknown };
  return new Promise<void>((resolve) => {
    let upstreamEnded = false;
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      up.body.removeListener("data", onData);
      signal.removeEventListener("abort", onAbort);
      if (err) {
        ex.fail(err);
        up.discard();
        cutOff(down);
      }
      resolve();
    };
    const onData = (chunk: Buffer) => {
      ex.responseBytes += chunk.length;
      clock.touch();
      if (!res.write(chunk)) {
        up.body.pause();
        res.once("drain", () => up.body.resume());
      }
    };
    const onAbort = () => finish(signal.reason as Error);
    up.body.on("data", onData);
    up.onTrailers?.((trailers: IncomingHttpHeaders) => {
      if (down.protocol !== "h2") return;
      const relayed: Record<string, string> = {};
      for (const [k, v] of Object.entries(trailers))
        if (v !== undefined && !k.startsWith(":")) relayed[k] = Array.isArray(v) ? v.join(", ") : v;
      down.res.addTrailers(relayed);
    });
    up.body.once("end", () => {
      upstreamEnded = true;
      down.res.end();
    });
    up.body.once("close", () => {
      if (!upstreamEnded)
        finish(
          waypointError(
            WaypointErrorCode.UPSTREAM_RESET,
            "the upstream response ended before it was complete",
          ),
        );
    });
    up.body.on("error", () => {});
    res.once("finish", () => finish());
    res.once("close", () => {
      if (!finished && !upstreamEnded)
        finish(
          waypointError(WaypointErrorCode.DOWNSTREAM_CLOSED, "the client went away during the response"),
        );
      else finish();
    });
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}
