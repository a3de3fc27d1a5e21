// JSON Web Key Sets for JWT verification: inline (`jwks`), fetched (`jwksUri`) or discovered from the
// issuer's OpenID configuration (neither set, as istiod does). Fetched sets are cached, kept when a
// refresh fails, and refetched for an unknown kid at most once per interval so tokens with made-up
// kids cannot turn the waypoint into a flood against the identity provider.

import type { JSONWebKeySet } from "jose";

/** Envoy's remote_jwks cache_duration as istiod configures it. */
export const DEFAULT_CACHE_DURATION_MS = 5 * 60_000;
/** At most one fetch per 30 s because a token names a kid we lack (jose's default cooldown). */
export const DEFAULT_UNKNOWN_KID_REFETCH_MS = 30_000;
/** After a failed fetch, wait this long before the next attempt (Envoy's failed_refetch_duration). */
export const DEFAULT_FAILED_FETCH_RETRY_MS = 1_000;

export interface JwksCacheOptions {
  cacheDurationMs?: number;
  unknownKidRefetchMs?: number;
  failedFetchRetryMs?: number;
  /** Injected for tests; the global fetch otherwise. */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
}

/** A key set could not be obtained; the request gets Envoy's "Jwks remote fetch is failed". */
export class JwksFetchError extends Error {
  readonly code = "AMB_JWKS_FETCH_FAILED";
}

export function isJwksFetchError(err: unknown): err is JwksFetchError {
  return (err as { code?: unknown } | null)?.code === "AMB_JWKS_FETCH_FAILED";
}

export interface KeySource {
  /** The current key set. Throws JwksFetchError when none can be had. */
  keys(): Promise<JSONWebKeySet>;
  /** A fresher key set after a kid miss, or undefined when refetching now is not allowed or failed. */
  refresh(): Promise<JSONWebKeySet | undefined>;
}

export function isJwkSet(value: unknown): value is JSONWebKeySet {
  return (
    typeof value === "object" &&
    value !== null &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((k) => typeof k === "object" && k !== null && !Array.isArray(k))
  );
}

/** An inline `jwks`: parsed once; undefined when it is not a JWKS (tokens then fail). */
export function inlineKeySource(jwks: string): KeySource | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(jwks);
  } catch {
    return undefined;
  }
  if (!isJwkSet(parsed)) return undefined;
  const set = parsed;
  return { keys: async () => set, refresh: async () => undefined };
}

type Resolve = (signal: AbortSignal) => Promise<string>;

class RemoteKeySource implements KeySource {
  private set: JSONWebKeySet | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private failedAt = Number.NEGATIVE_INFINITY;
  private lastError: Error | undefined;
  private inflight: Promise<JSONWebKeySet> | undefined;
  /** Successful and failed fetches, for tests and metrics. */
  fetches = 0;

  constructor(
    private readonly resolveUri: Resolve,
    private readonly timeoutMs: number,
    private readonly opts: Required<JwksCacheOptions>,
  ) {}

  async keys(): Promise<JSONWebKeySet> {
    const now = this.opts.now();
    if (this.set && now - this.fetchedAt < this.opts.cacheDurationMs) return this.set;
    if (this.inflight) return this.inflight.catch(() => this.stale());
    if (now - this.failedAt < this.opts.failedFetchRetryMs) return this.stale();
    return this.fetchNow().catch(() => this.stale());
  }

  async refresh(): Promise<JSONWebKeySet | undefined> {
    if (this.inflight) return this.inflight.catch(() => undefined);
    const now = this.opts.now();
    if (now - this.attemptedAt < this.opts.unknownKidRefetchMs) return undefined;
    if (now - this.failedAt < this.opts.failedFetchRetryMs) return undefined;
    return this.fetchNow().catch(() => undefined);
  }

  /** Keys past their cache duration still beat none: istiod keeps the last good set too. */
  private stale(): JSONWebKeySet {
    if (this.set) return this.set;
    throw this.lastError ?? new JwksFetchError("no JSON Web Key Set fetched yet");
  }

  private fetchNow(): Promise<JSONWebKeySet> {
    this.attemptedAt = this.opts.now();
    this.fetches++;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const run = (async () => {
      const uri = await this.resolveUri(signal);
      const body = await getJson(this.opts.fetch, uri, signal);
      if (!isJwkSet(body)) throw new JwksFetchError(`${uri} did not return a JSON Web Key Set`);
      return body;
    })();
    this.inflight = run
      .then((set) => {
        this.set = set;
        this.fetchedAt = this.opts.now();
        this.lastError = undefined;
        return set;
      })
      .catch((err: unknown) => {
        this.failedAt = this.opts.now();
        this.lastError = isJwksFetchError(err) ? err : new JwksFetchError(String(err), { cause: err });
        throw this.lastError;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }
}

async function getJson(fetchImpl: typeof fetch, uri: string, signal: AbortSignal): Promise<unknown> {
  let response: Response;
  try {
    response = await fetchImpl(uri, { signal, headers: { accept: "application/json" } });
  } catch (err) {
    throw new JwksFetchError(`fetching ${uri}: ${(err as Error).message}`, { cause: err });
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new JwksFetchError(`fetching ${uri}: HTTP ${response.status}`);
  }
  try {
    return await response.json();
  } catch (err) {
    throw new JwksFetchError(`fetching ${uri}: body is not JSON`, { cause: err });
  }
}

/**
 * Remote key sets shared by every authenticator built with this cache, keyed by URI (or issuer,
 * for discovery), so rebuilding authenticators on a config change does not refetch keys.
 */
export class JwksCache {
  private readonly opts: Required<JwksCacheOptions>;
  private readonly sources = new Map<string, RemoteKeySource>();

  constructor(options: JwksCacheOptions = {}) {
    this.opts = {
      cacheDurationMs: options.cacheDurationMs ?? DEFAULT_CACHE_DURATION_MS,
      unknownKidRefetchMs: options.unknownKidRefetchMs ?? DEFAULT_UNKNOWN_KID_REFETCH_MS,
      failedFetchRetryMs: options.failedFetchRetryMs ?? DEFAULT_FAILED_FETCH_RETRY_MS,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      now: options.now ?? Date.now,
    };
  }

  /** The key set at `jwksUri`. */
  remote(jwksUri: string, timeoutMs: number): KeySource {
    return this.source(`uri:${jwksUri}`, async () => jwksUri, timeoutMs);
  }

  /** The key set named by `<issuer>/.well-known/openid-configuration`, as istiod resolves a rule without keys. */
  discovered(issuer: string, timeoutMs: number): KeySource {
    let jwksUri: string | undefined;
    const resolve: Resolve = async (signal) => {
      if (jwksUri) return jwksUri;
      const discovery = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
      const config = await getJson(this.opts.fetch, discovery, signal);
      const uri = (config as { jwks_uri?: unknown } | null)?.jwks_uri;
      if (typeof uri !== "string") throw new JwksFetchError(`${discovery} has no jwks_uri`);
      jwksUri = uri;
      return uri;
    };
    return this.source(`issuer:${issuer}`, resolve, timeoutMs);
  }

  /** How many fetches a source has made (successful or not); 0 when unknown. */
  fetchCount(jwksUri: string): number {
    return this.sources.get(`uri:${jwksUri}`)?.fetches ?? 0;
  }

  private source(key: string, resolve: Resolve, timeoutMs: number): RemoteKeySource {
    let source = this.sources.get(key);
    if (!source) {
      source = new RemoteKeySource(resolve, timeoutMs, this.opts);
      this.sources.set(key, source);
    }
    return source;
  }
}
