// The clocks of one request, as one AbortSignal each stage and attempt listens to: the stream idle
// timeout (no byte either way), the route timeout and the per-try timeout (Envoy starts both once
// the downstream request is complete, so a slow upload does not eat the upstream's time), and the
// client going away. The signal's reason is the typed error that says which one fired.

import { WaypointErrorCode } from "@ambient/core";
import { waypointError } from "../errors.js";

export class RequestClock {
  private readonly controller = new AbortController();
  /** Aborted once the request cannot go on; `reason` is the typed error. */
  readonly signal: AbortSignal = this.controller.signal;
  private idleTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private requestComplete = false;
  private readonly onComplete = new Set<() => void>();

  private routeTimeoutMs: number | undefined;

  constructor(private readonly streamIdleMs: number) {
    this.touch();
  }

  /** The route's timeout (absent: none, Istio's default); it starts with `requestDone`. */
  setRouteTimeout(ms: number | undefined): void {
    this.routeTimeoutMs = ms;
  }

  /** A byte moved (either way) or headers arrived: the stream is not idle. */
  touch(): void {
    if (this.signal.aborted) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        this.abort(
          waypointError(WaypointErrorCode.IDLE_TIMEOUT, `no bytes either way for ${this.streamIdleMs} ms`, {
            details: { requestComplete: this.requestComplete },
          }),
        );
      }, this.streamIdleMs);
    }
  }

  /** The downstream request ended (end of stream): the route timeout runs from here. */
  requestDone(): void {
    if (this.requestComplete || this.signal.aborted) return;
    this.requestComplete = true;
    if (this.routeTimeoutMs !== undefined && !this.signal.aborted) {
      const ms = this.routeTimeoutMs;
      this.deadlineTimer = setTimeout(
        () =>
          this.abort(waypointError(WaypointErrorCode.UPSTREAM_TIMEOUT, `route timeout of ${ms} ms passed`)),
        ms,
      );
    }
    for (const f of [...this.onComplete]) f();
    this.onComplete.clear();
  }

  /** The connection switched protocols: no route timeout any more, only the idle one. */
  upgraded(): void {
    this.requestComplete = true;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.onComplete.clear();
  }

  abort(reason: Error): void {
    if (this.signal.aborted) return;
    this.controller.abort(reason);
    this.dispose();
  }

  /** Stops every timer (the request is over). */
  dispose(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.deadlineTimer);
    this.onComplete.clear();
  }

  /** A signal for one attempt: this request's, plus the per-try timeout when there is one. */
  attempt(perTryTimeoutMs: number | undefined): { signal: AbortSignal; dispose(): void } {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const follow = () => controller.abort(this.signal.reason);
    if (this.signal.aborted) follow();
    else this.signal.addEventListener("abort", follow, { once: true });
    const arm = () => {
      if (perTryTimeoutMs === undefined || controller.signal.aborted) return;
      timer = setTimeout(
        () =>
          controller.abort(
            waypointError(
              WaypointErrorCode.UPSTREAM_TIMEOUT,
              `per-try timeout of ${perTryTimeoutMs} ms passed`,
              {
                details: { perTry: true },
              },
            ),
          ),
        perTryTimeoutMs,
      );
    };
    if (this.requestComplete) arm();
    else this.onComplete.add(arm);
    return {
      signal: controller.signal,
      dispose: () => {
        clearTimeout(timer);
        this.onComplete.delete(arm);
        this.signal.removeEventListener("abort", follow);
      },
    };
  }
}
