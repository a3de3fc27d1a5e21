// HTTP/2 toward endpoints (h2c prior knowledge, gRPC), pooled as Envoy pools its HTTP/2 upstream
// connections: one session per endpoint and connection policy, carried over the byte stream
// openUpstream makes, shared by concurrent requests up to the app's SETTINGS_MAX_CONCURRENT_STREAMS.
// A session leaves the pool the moment it cannot take a new stream: the app's GOAWAY (gRPC servers
// send one on their idle or age limit), the tunnel ending or failing, maxRequestsPerConnection
// reached, maxConnectionDuration passed; it is closed after the policy's idle timeout with no
// stream open.

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type OutgoingHttpHeaders,
} from "node:http2";
import type { UpstreamConnectionPolicy } from "./stages.js";
import { asByteStream } from "./stream-adapter.js";
import { openUpstream, type UpstreamDeps, type UpstreamTarget, upstreamHost } from "./upstream.js";
import { UPSTREAM_IDLE_TIMEOUT_MS } from "./upstream-agents.js";

/**
 * Streams per session at most, whatever the app allows (Envoy: 2^31-1 upstream; ztunnel's HBONE
 * pool: 100, which we follow): past it another session is opened.
 */
const MAX_STREAMS_PER_SESSION = 100;

const DEFAULT_POLICY: UpstreamConnectionPolicy = {
  maxRequestsPerConnection: Number.POSITIVE_INFINITY,
  idleTimeoutMs: UPSTREAM_IDLE_TIMEOUT_MS,
};

interface Pooled {
  session: ClientHttp2Session;
  /** Streams opened on it, for maxRequestsPerConnection. */
  served: number;
  active: number;
  usable: boolean;
  idleTimer?: NodeJS.Timeout;
}

export interface H2Stream {
  stream: ClientHttp2Stream;
  /** The session had carried streams before: a failure before any answer may be a stale session. */
  reused: boolean;
}

export class UpstreamH2Sessions {
  private readonly pools = new Map<string, Pooled[]>();

  constructor(private readonly deps: UpstreamDeps) {}

  /** Opens a stream for one request, on a pooled session of the endpoint or a new one. */
  async request(
    target: UpstreamTarget,
    policy: UpstreamConnectionPolicy | undefined,
    headers: OutgoingHttpHeaders,
  ): Promise<H2Stream> {
    const limits = policy ?? DEFAULT_POLICY;
    const key = this.key(target, limits);
    const list = this.pools.get(key) ?? [];
    let pooled = list.find((p) => p.usable && p.active < maxStreams(p.session, limits));
    const reused = pooled !== undefined;
    if (!pooled) {
      pooled = await this.open(target, limits, key);
      if (!pooled.usable) throw new Error("the new upstream HTTP/2 session closed before its first stream");
    }
    const p = pooled;
    clearTimeout(p.idleTimer);
    p.active++;
    p.served++;
    if (p.served >= limits.maxRequestsPerConnection) this.retire(key, p);
    let stream: ClientHttp2Stream;
    try {
      stream = p.session.request(headers, { endStream: false });
    } catch (err) {
      // The session went away between the check and the request (a GOAWAY just arrived).
      p.active--;
      this.retire(key, p);
      throw err;
    }
    stream.once("close", () => {
      p.active--;
      if (p.active > 0) return;
      if (!p.usable) p.session.close();
      else if (Number.isFinite(limits.idleTimeoutMs)) {
        p.idleTimer = setTimeout(() => {
          this.retire(key, p);
          p.session.close();
        }, limits.idleTimeoutMs);
        p.idleTimer.unref();
      }
    });
    return { stream, reused: reused && p.served > 1 };
  }

  /** Takes the idle sessions of an endpoint out of the pool (a stream on one found it dead). */
  dropIdle(target: UpstreamTarget, policy: UpstreamConnectionPolicy | undefined): void {
    const limits = policy ?? DEFAULT_POLICY;
    const key = this.key(target, limits);
    for (const p of [...(this.pools.get(key) ?? [])]) {
      if (p.active > 0) continue;
      this.retire(key, p);
      p.session.close();
    }
  }

  destroy(): void {
    for (const list of this.pools.values()) for (const p of list) p.session.destroy();
    this.pools.clear();
  }

  private async open(target: UpstreamTarget, limits: UpstreamConnectionPolicy, key: string): Promise<Pooled> {
    const tunnel = asByteStream(await openUpstream(this.deps, target, {}, ["h2"]));
    const session = connect("http://upstream", { createConnection: () => tunnel as never });
    const p: Pooled = { session, served: 0, active: 0, usable: true };
    const list = this.pools.get(key) ?? [];
    list.push(p);
    this.pools.set(key, list);
    const leave = () => this.retire(key, p);
    session.once("goaway", leave);
    session.once("close", leave);
    // A failed session fails its streams, which report it to the request; nothing to add here.
    session.on("error", leave);
    // The app closed the connection (ztunnel ends the tunnel): the session must not wait for more.
    tunnel.once("end", () => {
      leave();
      session.destroy();
    });
    // connectionPool.tcp.maxConnectionDuration: no new streams past that age; the open ones finish
    // (retire closes the session once the last is done), as Envoy drains such a connection.
    const maxAge = limits.maxConnectionDurationMs;
    if (maxAge !== undefined && Number.isFinite(maxAge)) {
      const aged = setTimeout(leave, maxAge);
      aged.unref();
      session.once("close", () => clearTimeout(aged));
    }
    return p;
  }

  private retire(key: string, p: Pooled): void {
    if (!p.usable) return;
    p.usable = false;
    clearTimeout(p.idleTimer);
    const rest = (this.pools.get(key) ?? []).filter((x) => x !== p);
    if (rest.length > 0) this.pools.set(key, rest);
    else this.pools.delete(key);
    if (p.active === 0 && !p.session.closed) p.session.close();
  }

  private key(target: UpstreamTarget, policy: UpstreamConnectionPolicy): string {
    // As the HTTP/1.1 agents: a DestinationRule edit applies to new sessions.
    return [
      target.workload?.uid ?? "",
      upstreamHost(target),
      target.port,
      policy.maxRequestsPerConnection,
      policy.idleTimeoutMs,
      policy.maxConnectionDurationMs,
      policy.maxConcurrentStreams,
      target.connectTimeoutMs,
      JSON.stringify(target.keepalive ?? null),
      JSON.stringify(target.tls ?? null),
    ].join("|");
  }
}

/** The app's SETTINGS_MAX_CONCURRENT_STREAMS, the DestinationRule's maxConcurrentStreams, our cap. */
function maxStreams(session: ClientHttp2Session, policy: UpstreamConnectionPolicy): number {
  return Math.min(
    session.remoteSettings.maxConcurrentStreams ?? MAX_STREAMS_PER_SESSION,
    policy.maxConcurrentStreams ?? MAX_STREAMS_PER_SESSION,
    MAX_STREAMS_PER_SESSION,
  );
}
