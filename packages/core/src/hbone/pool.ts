// Pools HBONE client sessions (DESIGN §4): one key per source certificate, expected server
// identities, destination and source address; up to 100 streams per session before another is
// opened; idle sessions closed after 5 minutes; sessions that fail, get GOAWAY or outlive a rotated
// certificate are never handed out again but keep their open streams until those end.

import type { WorkloadCertificate } from "../ca/authority.js";
import { errorMessage } from "../errors/errors.js";
import type { Logger } from "../telemetry/logging.js";
import { formatAuthority } from "./authority.js";
import { type CreateConnection, HboneClientSession, type HboneStream } from "./client.js";
import { HboneErrorCode, hboneError } from "./errors.js";
import { CLIENT_MAX_STREAMS_PER_SESSION, type KeepaliveOptions } from "./settings.js";

/** ztunnel's pool releases a connection after 5 idle minutes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** ztunnel's connect timeout. Covers TCP, TLS and the server's answer to CONNECT. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface HboneConnectRequest {
  source: WorkloadCertificate;
  rootsPem: string[];
  /** The HBONE server: a peer ztunnel's pod IP and 15008, or a waypoint. */
  destination: { host: string; port: number };
  /** SPIFFE IDs the server may present (the workload's, or a service's subject alt names). */
  expectedIdentities: readonly string[];
  /** `podIP:targetPort`, or a waypoint's original `VIP:port`. */
  authority: string;
  /** Sent with the CONNECT: `forwarded`, `baggage`, `traceparent`. Lowercase names. */
  headers?: Record<string, string>;
  /** Source address to bind; part of the pool key. */
  localAddress?: string;
  signal?: AbortSignal;
  connectTimeoutMs?: number;
}

export interface HboneClientPoolOptions {
  logger?: Logger;
  /** Makes the TCP socket; defaults to `net.connect` bound to `localAddress` when given. */
  createConnection?: CreateConnection;
  maxStreamsPerSession?: number;
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  keepalive?: KeepaliveOptions;
}

export interface HboneSessionStats {
  id: number;
  state: "connecting" | "ready" | "retired";
  destination: string;
  sourceIdentity: string;
  sourceSerial: string;
  expectedIdentities: string[];
  localAddress?: string;
  peerIdentity?: string;
  activeStreams: number;
  ageMs: number;
}

export interface HboneClientPoolStats {
  sessions: number;
  activeStreams: number;
  /** By pool key (source identity, expected identities, destination, source address). */
  byKey: Record<string, HboneSessionStats[]>;
}

interface Pooled {
  id: number;
  key: string;
  serial: string;
  request: HboneConnectRequest;
  createdAt: number;
  ready: Promise<HboneClientSession>;
  client?: HboneClientSession;
  active: number;
  /** No new streams: errored, GOAWAY, certificate rotated, pool closing. */
  retired: boolean;
  idleTimer?: NodeJS.Timeout;
}

export class HboneClientPool {
  readonly #opts: HboneClientPoolOptions;
  readonly #maxStreams: number;
  readonly #idleTimeoutMs: number;
  /** Sessions new streams may use, by key. Retired ones leave this map at once. */
  readonly #byKey = new Map<string, Pooled[]>();
  /** Every session not yet closed, for stats and close(). */
  readonly #all = new Set<Pooled>();
  #nextId = 1;
  #closed = false;

  constructor(opts: HboneClientPoolOptions = {}) {
    this.#opts = opts;
    this.#maxStreams = opts.maxStreamsPerSession ?? CLIENT_MAX_STREAMS_PER_SESSION;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  /** Opens a tunnel to `req.authority` through the HBONE server at `req.destination`. */
  async connect(req: HboneConnectRequest): Promise<HboneStream> {
    const destination = formatAuthority(req.destination.host, req.destination.port);
    const what = `HBONE CONNECT to ${destination} (authority ${req.authority})`;
    if (this.#closed) throw hboneError(HboneErrorCode.INVALID_REQUEST, `${what}: the pool is closed`);
    if (req.expectedIdentities.length === 0) {
      throw hboneError(HboneErrorCode.INVALID_REQUEST, `${what}: no expected server identities given`);
    }
    const timeoutMs = req.connectTimeoutMs ?? this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = deadlineSignal(timeoutMs, req.signal, what);
    try {
      try {
        return await this.#attempt(req, deadline.signal);
      } catch (err) {
        // Lost a race with a GOAWAY: the server never saw the stream, so one retry is safe.
        if ((err as { details?: { retryable?: unknown } }).details?.retryable !== true) throw err;
        if (deadline.signal.aborted) throw deadline.signal.reason;
        return await this.#attempt(req, deadline.signal);
      }
    } finally {
      deadline.dispose();
    }
  }

  stats(): HboneClientPoolStats {
    const byKey: Record<string, HboneSessionStats[]> = {};
    let activeStreams = 0;
    const now = Date.now();
    for (const p of this.#all) {
      activeStreams += p.active;
      const entry: HboneSessionStats = {
        id: p.id,
        state: p.retired ? "retired" : p.client ? "ready" : "connecting",
        destination: formatAuthority(p.request.destination.host, p.request.destination.port),
        sourceIdentity: p.request.source.identity.toString(),
        sourceSerial: p.serial,
        expectedIdentities: [...p.request.expectedIdentities].sort(),
        activeStreams: p.active,
        ageMs: now - p.createdAt,
      };
      if (p.request.localAddress) entry.localAddress = p.request.localAddress;
      if (p.client) entry.peerIdentity = p.client.peerIdentity.toString();
      const list = byKey[p.key] ?? [];
      list.push(entry);
      byKey[p.key] = list;
    }
    return { sessions: this.#all.size, activeStreams, byKey };
  }

  /** GOAWAY to every session; open streams finish. Resolves when all sessions have closed. */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#all].map((p) => {
      this.#retire(p);
      return p.ready.then(
        (client) =>
          new Promise<void>((resolve) => {
            if (client.session.closed || client.session.destroyed) return resolve();
            client.session.close(() => resolve());
          }),
        () => undefined,
      );
    });
    await Promise.all(closing);
  }

  /** Drops every session and stream now. */
  destroy(): void {
    this.#closed = true;
    for (const p of [...this.#all]) {
      this.#retire(p);
      p.client?.session.destroy();
      this.#forget(p);
    }
  }

  async #attempt(req: HboneConnectRequest, signal: AbortSignal): Promise<HboneStream> {
    const pooled = this.#acquire(req);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#release(pooled);
    };
    try {
      const client = await raceSignal(pooled.ready, signal);
      const request = { authority: req.authority, signal, onClose: release };
      return await client.request(req.headers ? { ...request, headers: req.headers } : request);
    } catch (err) {
      release();
      throw err;
    }
  }

  /** A session with a free stream slot for this request (reserved before returning), or a new one. */
  #acquire(req: HboneConnectRequest): Pooled {
    const key = poolKey(req);
    const serial = req.source.serial;
    const list = this.#byKey.get(key) ?? [];
    for (const p of [...list]) {
      // A rotated certificate: the old sessions finish their streams but get no new ones.
      if (p.serial !== serial || (p.client && !p.client.usable)) {
        this.#retire(p);
        continue;
      }
      if (p.active < this.#limit(p)) {
        this.#take(p);
        return p;
      }
    }
    const p = this.#open(key, req);
    this.#take(p);
    return p;
  }

  #limit(p: Pooled): number {
    // Never more than the server allows (its SETTINGS, once seen): nghttp2 would queue the rest.
    const remote = p.client?.session.remoteSettings.maxConcurrentStreams;
    return remote === undefined ? this.#maxStreams : Math.min(this.#maxStreams, remote);
  }

  #take(p: Pooled): void {
    p.active++;
    if (p.idleTimer) clearTimeout(p.idleTimer);
    p.idleTimer = undefined;
    p.client?.session.ref();
  }

  #release(p: Pooled): void {
    p.active--;
    if (p.active > 0 || !p.client) return;
    if (p.retired) {
      p.client.session.close();
      return;
    }
    // Idle sessions must not keep a process alive by themselves.
    p.client.session.unref();
    p.idleTimer = setTimeout(() => {
      this.#opts.logger?.debug(
        { destination: p.client?.destination, id: p.id },
        "closing idle HBONE session",
      );
      this.#retire(p);
      p.client?.session.close();
    }, this.#idleTimeoutMs);
    p.idleTimer.unref();
  }

  #open(key: string, req: HboneConnectRequest): Pooled {
    const timeoutMs = req.connectTimeoutMs ?? this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const destination = formatAuthority(req.destination.host, req.destination.port);
    // The session outlives the request that opened it: its own deadline, not the caller's signal.
    const deadline = deadlineSignal(timeoutMs, undefined, `HBONE connection to ${destination}`);
    const p: Pooled = {
      id: this.#nextId++,
      key,
      serial: req.source.serial,
      request: req,
      createdAt: Date.now(),
      active: 0,
      retired: false,
      ready: HboneClientSession.open(
        {
          source: req.source,
          rootsPem: req.rootsPem,
          expectedIdentities: req.expectedIdentities,
          destination: req.destination,
          ...(req.localAddress ? { localAddress: req.localAddress } : {}),
          ...(this.#opts.createConnection ? { createConnection: this.#opts.createConnection } : {}),
          ...(this.#opts.keepalive ? { keepalive: this.#opts.keepalive } : {}),
        },
        deadline.signal,
      ).finally(() => deadline.dispose()),
    };
    const list = this.#byKey.get(key) ?? [];
    list.push(p);
    this.#byKey.set(key, list);
    this.#all.add(p);
    p.ready.then(
      (client) => {
        p.client = client;
        const { session } = client;
        session.once("goaway", () => this.#retire(p));
        session.once("error", (err) => {
          this.#opts.logger?.debug({ destination, err: errorMessage(err) }, "HBONE session error");
          this.#retire(p);
        });
        session.once("close", () => {
          this.#retire(p);
          this.#forget(p);
        });
        // Retired while connecting (pool closed, certificate rotated) and nobody waiting on it.
        if (this.#closed || (p.retired && p.active === 0)) {
          this.#retire(p);
          session.close();
        }
      },
      (err) => {
        this.#opts.logger?.debug({ destination, err: errorMessage(err) }, "HBONE connection failed");
        this.#retire(p);
        this.#forget(p);
      },
    );
    return p;
  }

  #retire(p: Pooled): void {
    if (p.retired) return;
    p.retired = true;
    if (p.idleTimer) clearTimeout(p.idleTimer);
    p.idleTimer = undefined;
    const list = this.#byKey.get(p.key);
    if (!list) return;
    const rest = list.filter((x) => x !== p);
    if (rest.length > 0) this.#byKey.set(p.key, rest);
    else this.#byKey.delete(p.key);
    // Streams still open keep it; the last one to close closes it (see #release).
    if (p.active === 0 && p.client) p.client.session.close();
  }

  #forget(p: Pooled): void {
    this.#all.delete(p);
  }
}

/** Source cert (identity + serial), sorted expected identities, destination, source address. */
function poolKey(req: HboneConnectRequest): string {
  const expected = [...req.expectedIdentities].sort().join(",");
  const dest = formatAuthority(req.destination.host, req.destination.port);
  return `${req.source.identity}|${expected}|${dest}|${req.localAddress ?? ""}`;
}

/** A signal aborted with a typed TIMEOUT after `ms`, or ABORTED when `parent` aborts first. */
function deadlineSignal(
  ms: number,
  parent: AbortSignal | undefined,
  what: string,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(hboneError(HboneErrorCode.TIMEOUT, `${what} timed out after ${ms} ms`));
  }, ms);
  const onParent = () => {
    controller.abort(hboneError(HboneErrorCode.ABORTED, `${what} aborted`, { cause: parent?.reason }));
  };
  if (parent?.aborted) onParent();
  else parent?.addEventListener("abort", onParent, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
