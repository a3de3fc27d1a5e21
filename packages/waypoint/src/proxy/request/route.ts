// Stages 4 and 5, route and fault: the VirtualService decision for the request (a forward plan, a
// local answer such as a redirect, or 404 NR when the service's rules match nothing), then the
// route's fault injection — a delay before forwarding, or an abort in place of it.

import { WaypointErrorCode } from "@ambient/core";
import type { L7Request } from "../../model/request.js";
import { waypointError } from "../errors.js";
import type { RouteResult, Stages } from "../stages.js";

export type ForwardPlan = Extract<RouteResult, { kind: "forward" }>;
export type LocalAnswer = Extract<RouteResult, { kind: "respond" }>;

export function route(stages: Stages, l7: L7Request): ForwardPlan | LocalAnswer {
  const decision = stages.route(l7);
  if (decision.kind === "no-route") {
    throw waypointError(
      WaypointErrorCode.ROUTE_NOT_MATCHED,
      `no route matches ${l7.method} ${l7.authority}${l7.path}`,
    );
  }
  return decision;
}

/** Waits out an injected delay (cut short if the client leaves), then aborts if the route says so. */
export async function injectFault(plan: ForwardPlan, signal: AbortSignal): Promise<void> {
  const delayMs = plan.fault?.delayMs;
  if (delayMs) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delayMs);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }
  const status = plan.fault?.abortStatus;
  if (status) {
    throw waypointError(WaypointErrorCode.FAULT_ABORT, `fault injection aborted with ${status}`, {
      details: { status },
    });
  }
}
