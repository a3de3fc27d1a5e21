// Faults a test injects to see a client survive the API server misbehaving: errors (5xx) and
// slow answers for matching requests, watches that go silent without closing, every watch
// expired with 410, and (on the server) restart with a downtime.

import { ApiErrorCode, apiError } from "./errors.js";
import type { WatchHub } from "./watch.js";

export interface RequestMatch {
  /** Substring or pattern of the request path (without the query). */
  path?: string | RegExp;
  method?: string;
  /** Only watch requests (`watch=1`), or only non-watch ones. */
  watch?: boolean;
}

interface Rule extends RequestMatch {
  remaining: number;
  status?: number;
  delayMs?: number;
}

export class Faults {
  private rules: Rule[] = [];

  constructor(private readonly watches: WatchHub) {}

  /** The next `count` matching requests fail with `status` (default 500 InternalError). */
  failNext(count: number, status = 500, match: RequestMatch = {}): void {
    this.rules.push({ ...match, remaining: count, status });
  }

  /** The next `count` matching requests wait `delayMs` before being served. */
  delayNext(count: number, delayMs: number, match: RequestMatch = {}): void {
    this.rules.push({ ...match, remaining: count, delayMs });
  }

  /** Open and new watches stop sending anything (no events, no bookmarks) and never end. */
  stallWatches(): void {
    this.watches.stalled = true;
  }

  resumeWatches(): void {
    this.watches.stalled = false;
  }

  /** Every open watch receives ERROR 410 Expired and ends. */
  expireWatches(): void {
    this.watches.expireAll();
  }

  clear(): void {
    this.rules = [];
    this.watches.stalled = false;
  }

  /** Called by the router for each request: waits or throws as the first matching rules say. */
  async before(method: string, path: string, watch: boolean): Promise<void> {
    for (const rule of this.rules) {
      if (rule.remaining <= 0 || !matches(rule, method, path, watch)) continue;
      rule.remaining--;
      if (rule.delayMs !== undefined) await new Promise((r) => setTimeout(r, rule.delayMs));
      if (rule.status !== undefined) {
        throw apiError(ApiErrorCode.INJECTED, `injected fault: ${rule.status} for ${method} ${path}`, {
          httpStatus: rule.status,
        });
      }
    }
    this.rules = this.rules.filter((r) => r.remaining > 0);
  }
}

function matches(rule: RequestMatch, method: string, path: string, watch: boolean): boolean {
  if (rule.method && rule.method.toUpperCase() !== method) return false;
  if (rule.watch !== undefined && rule.watch !== watch) return false;
  if (rule.path === undefined) return true;
  return typeof rule.path === "string" ? path.includes(rule.path) : rule.path.test(path);
}
