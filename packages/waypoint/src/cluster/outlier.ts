// Envoy's consecutive-error outlier detection for one cluster (DestinationRule outlierDetection):
// counts consecutive 5xx, gateway and local-origin failures per endpoint, ejects within
// maxEjectionPercent, and returns endpoints on the interval sweep after a backed-off ejection time.

import type { OutlierPolicy } from "./policy.js";

export interface OutlierOutcome {
  /** The upstream's HTTP status, when it answered. */
  status?: number;
  /** A 502/503/504-class failure without a status (e.g. a TCP-level upstream error). */
  gatewayError?: boolean;
  /** Connect failure, timeout or reset: no answer from the endpoint at all. */
  localOriginFailure?: boolean;
}

export type EjectionReason =
  | "consecutive_5xx"
  | "consecutive_gateway_failure"
  | "consecutive_local_origin_failure";

export type OutlierEvent =
  | {
      type: "eject";
      uid: string;
      reason: EjectionReason;
      at: number;
      numEjections: number;
      durationMs: number;
    }
  | { type: "uneject"; uid: string; at: number; numEjections: number }
  /** Detected but not ejected: maxEjectionPercent reached (Envoy's ejections_overflow). */
  | { type: "overflow"; uid: string; reason: EjectionReason; at: number };

export interface OutlierHostSnapshot {
  uid: string;
  ejected: boolean;
  ejectedAt?: number;
  /** The interval sweep at which the endpoint comes back. */
  returnsAt?: number;
  numEjections: number;
  /** The multiplier of baseEjectionTime for the next (or current) ejection. */
  ejectionMultiplier: number;
  consecutive5xx: number;
  consecutiveGatewayErrors: number;
  consecutiveLocalOriginFailures: number;
}

export interface OutlierSnapshot {
  ejectionsActive: number;
  hosts: OutlierHostSnapshot[];
  /** Envoy outlier_detection.* counters, camelCased. */
  stats: {
    ejectionsEnforcedTotal: number;
    ejectionsOverflow: number;
    ejectionsDetectedConsecutive5xx: number;
    ejectionsDetectedConsecutiveGatewayFailure: number;
    ejectionsDetectedConsecutiveLocalOriginFailure: number;
  };
}

export interface OutlierOptions {
  /** The cluster's endpoint uids; the denominator of maxEjectionPercent. */
  hosts?: Iterable<string>;
  /** Ejections, returns and overflows, for logs and metrics. */
  onEvent?: (event: OutlierEvent) => void;
}

interface HostMonitor {
  ejected: boolean;
  lastEjectionAt: number;
  lastUnejectionAt?: number;
  numEjections: number;
  backoff: number;
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
}

export class OutlierDetector {
  private readonly hosts = new Map<string, HostMonitor>();
  private readonly start: number;
  /** Index of the last interval sweep applied; sweeps happen at start + k * interval. */
  private sweep = 0;
  private ejectionsActive = 0;
  private readonly counters = {
    ejectionsEnforcedTotal: 0,
    ejectionsOverflow: 0,
    ejectionsDetectedConsecutive5xx: 0,
    ejectionsDetectedConsecutiveGatewayFailure: 0,
    ejectionsDetectedConsecutiveLocalOriginFailure: 0,
  };

  constructor(
    readonly policy: OutlierPolicy,
    private readonly now: () => number,
    private readonly opts: OutlierOptions = {},
  ) {
    // Envoy arms its interval timer when the cluster is created; sweeps are computed lazily from
    // now() instead of a timer, which gives the same decisions at the same instants.
    this.start = now();
    if (opts.hosts) this.setHosts(opts.hosts);
  }

  /** The current endpoint set. A removed endpoint forgets its history, as in Envoy. */
  setHosts(uids: Iterable<string>): void {
    this.catchUp();
    const keep = new Set(uids);
    for (const [uid, m] of this.hosts) {
      if (keep.has(uid)) continue;
      if (m.ejected) this.ejectionsActive--;
      this.hosts.delete(uid);
    }
    for (const uid of keep) if (!this.hosts.has(uid)) this.hosts.set(uid, freshMonitor());
  }

  /** One request's (or connection's) result against an endpoint. Unknown endpoints are ignored. */
  record(uid: string, outcome: OutlierOutcome): void {
    this.catchUp();
    const m = this.hosts.get(uid);
    if (!m) return;
    const p = this.policy;
    const local = outcome.localOriginFailure === true;
    if (p.splitExternalLocalOriginErrors) {
      if (local) {
        if (++m.consecutiveLocal === p.consecutiveLocalOriginFailures) {
          this.detected(uid, m, "consecutive_local_origin_failure");
        }
        return;
      }
      // Reaching the endpoint at all is a local-origin success.
      m.consecutiveLocal = 0;
    }
    // Unsplit, Envoy maps a connect failure to 503 (a timeout to 504): both gateway errors.
    const status = outcome.status;
    const gateway =
      outcome.gatewayError === true ||
      (local && !p.splitExternalLocalOriginErrors) ||
      (status !== undefined && status >= 502 && status <= 504);
    const is5xx = gateway || (status !== undefined && status >= 500 && status <= 599);
    if (!is5xx) {
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
      return;
    }
    // Thresholds fire on equality: a count that passes one while ejected waits for a reset.
    if (!gateway) m.consecutiveGateway = 0;
    else if (++m.consecutiveGateway === p.consecutiveGatewayErrors) {
      this.detected(uid, m, "consecutive_gateway_failure");
    }
    if (++m.consecutive5xx === p.consecutive5xxErrors) this.detected(uid, m, "consecutive_5xx");
  }

  isEjected(uid: string): boolean {
    this.catchUp();
    return this.hosts.get(uid)?.ejected ?? false;
  }

  /** Apply the interval sweeps due by now. Every other method does this first; exposed for timers. */
  tick(): void {
    this.catchUp();
  }

  snapshot(): OutlierSnapshot {
    this.catchUp();
    const hosts = [...this.hosts].map(([uid, m]) => ({
      uid,
      ejected: m.ejected,
      ...(m.ejected ? { ejectedAt: m.lastEjectionAt, returnsAt: this.sweepTime(this.returnSweep(m)) } : {}),
      numEjections: m.numEjections,
      ejectionMultiplier: m.backoff,
      consecutive5xx: m.consecutive5xx,
      consecutiveGatewayErrors: m.consecutiveGateway,
      consecutiveLocalOriginFailures: m.consecutiveLocal,
    }));
    return { ejectionsActive: this.ejectionsActive, hosts, stats: { ...this.counters } };
  }

  /** Envoy's onConsecutiveErrorWorker: ignored while ejected, else try to eject and reset that count. */
  private detected(uid: string, m: HostMonitor, reason: EjectionReason): void {
    if (m.ejected) return;
    if (reason === "consecutive_5xx") this.counters.ejectionsDetectedConsecutive5xx++;
    else if (reason === "consecutive_gateway_failure")
      this.counters.ejectionsDetectedConsecutiveGatewayFailure++;
    else this.counters.ejectionsDetectedConsecutiveLocalOriginFailure++;
    this.eject(uid, m, reason);
    if (reason === "consecutive_5xx") m.consecutive5xx = 0;
    else if (reason === "consecutive_gateway_failure") m.consecutiveGateway = 0;
    else m.consecutiveLocal = 0;
  }

  private eject(uid: string, m: HostMonitor, reason: EjectionReason): void {
    const p = this.policy;
    const at = this.now();
    // Envoy counts this ejection in the share: with the default 10%, fewer than ten endpoints
    // means no ejection at all (Envoy's always_eject_one_host is off and Istio cannot set it).
    const ejectedPercent = (100 * (this.ejectionsActive + 1)) / this.hosts.size;
    if (ejectedPercent > p.maxEjectionPercent) {
      this.counters.ejectionsOverflow++;
      this.opts.onEvent?.({ type: "overflow", uid, reason, at });
      return;
    }
    this.ejectionsActive++;
    this.counters.ejectionsEnforcedTotal++;
    m.ejected = true;
    m.numEjections++;
    m.lastEjectionAt = at;
    // The multiplier grows until it reaches the cap (one step past, so decay starts from the cap).
    if (m.backoff * p.baseEjectionTimeMs < p.maxEjectionTimeMs + p.baseEjectionTimeMs) m.backoff++;
    const durationMs = this.ejectionTime(m);
    this.opts.onEvent?.({ type: "eject", uid, reason, at, numEjections: m.numEjections, durationMs });
  }

  private ejectionTime(m: HostMonitor): number {
    return Math.min(this.policy.baseEjectionTimeMs * m.backoff, this.policy.maxEjectionTimeMs);
  }

  private sweepTime(k: number): number {
    return this.start + k * this.policy.intervalMs;
  }

  /** The first sweep after the last applied one at which the ejection time has elapsed. */
  private returnSweep(m: HostMonitor): number {
    const due = m.lastEjectionAt + this.ejectionTime(m);
    return Math.max(this.sweep + 1, Math.ceil((due - this.start) / this.policy.intervalMs));
  }

  /**
   * Envoy's onIntervalTimer for every sweep due since the last call: return endpoints whose
   * ejection time has passed (resetting their counters), and lower the multiplier of endpoints that
   * have stayed in for a full interval since their return.
   */
  private catchUp(): void {
    const interval = this.policy.intervalMs;
    const due = Math.floor((this.now() - this.start) / interval);
    if (due <= this.sweep) return;
    const returned: { uid: string; at: number; numEjections: number }[] = [];
    for (const [uid, m] of this.hosts) {
      if (m.ejected) {
        const k = this.returnSweep(m);
        if (k > due) continue;
        m.ejected = false;
        m.lastUnejectionAt = this.sweepTime(k);
        m.consecutive5xx = 0;
        m.consecutiveGateway = 0;
        m.consecutiveLocal = 0;
        this.ejectionsActive--;
        returned.push({ uid, at: m.lastUnejectionAt, numEjections: m.numEjections });
      }
      if (m.backoff > 0 && m.lastUnejectionAt !== undefined) {
        const first = Math.max(
          this.sweep + 1,
          Math.ceil((m.lastUnejectionAt + interval - this.start) / interval),
        );
        if (due >= first) m.backoff = Math.max(0, m.backoff - (due - first + 1));
      }
    }
    this.sweep = due;
    returned.sort((a, b) => a.at - b.at);
    for (const r of returned) this.opts.onEvent?.({ type: "uneject", ...r });
  }
}

function freshMonitor(): HostMonitor {
  return {
    ejected: false,
    lastEjectionAt: 0,
    numEjections: 0,
    backoff: 0,
    consecutive5xx: 0,
    consecutiveGateway: 0,
    consecutiveLocal: 0,
  };
}
