// The few raw API calls the reflector needs, authenticated the way the kubeconfig says (client
// certificate, bearer token, in-cluster service account), through the same HTTP stack the client
// library's Watch uses. Kinds are addressed by plural from our own kind table, so no discovery
// round trip precedes a list.

import { HttpMethod, type KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fetch } from "undici";

export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** A non-2xx answer: the HTTP status and the API server's Status message when it sent one. */
export class ApiError extends Error {
  readonly code = "AMB_KUBE_API";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status of an API server's refusal anywhere in `err`'s cause chain (0: no answer at all). */
export function apiStatusOf(err: unknown): number | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 16; depth++) {
    const e = cur as { code?: unknown; status?: unknown; cause?: unknown };
    if (e.code === "AMB_KUBE_API" && typeof e.status === "number") return e.status;
    cur = e.cause;
  }
  return undefined;
}

/** `/api/v1/pods` or `/apis/security.istio.io/v1/authorizationpolicies` (all namespaces, or `namespace`). */
export function resourcePath(r: ResourceRef, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  return namespace && r.namespaced ? `${base}/namespaces/${namespace}/${r.plural}` : `${base}/${r.plural}`;
}

export async function getJson<T>(
  kc: KubeConfig,
  path: string,
  query: Record<string, string> = {},
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ApiError(0, "the kubeconfig names no current cluster");
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  const res = await fetch(url, {
    headers: { ...ctx.getHeaders(), accept: "application/json" },
    dispatcher: ctx.getDispatcher() as never,
    signal: AbortSignal.timeout(LIST_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {}
    throw new ApiError(res.status, `GET ${path}: ${res.status} ${message}`);
  }
  return JSON.parse(text) as T;
}

// A page of 500 objects comes back in milliseconds; this only stops a list from hanging forever.
const LIST_TIMEOUT_MS = 60_000;
// A write or a TokenReview is answered in milliseconds; this only keeps one from hanging its caller
// (the CNI agent's patch queue, a proxy's CA call). client-go's default request timeout is 32 s.
const WRITE_TIMEOUT_MS = 15_000;

/**
 * One write (POST, PUT, PATCH, DELETE) with a JSON body; resolves with the answer's JSON. The
 * content type says which patch it is (`application/merge-patch+json`, `application/apply-patch+yaml`
 * for server-side apply: JSON is YAML).
 */
export async function requestJson<T>(
  kc: KubeConfig,
  method: "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  body: unknown,
  opts: { query?: Record<string, string>; contentType?: string } = {},
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ApiError(0, "the kubeconfig names no current cluster");
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod[method]);
  await kc.applySecurityAuthentication(ctx);
  const res = await fetch(url, {
    method,
    headers: {
      ...ctx.getHeaders(),
      accept: "application/json",
      "content-type": opts.contentType ?? "application/json",
    },
    body: JSON.stringify(body),
    dispatcher: ctx.getDispatcher() as never,
    signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {}
    throw new ApiError(res.status, `${method} ${path}: ${res.status} ${message}`);
  }
  return JSON.parse(text) as T;
}

export interface WatchEvent {
  type: string;
  object: Record<string, unknown>;
}

/**
 * Streams one watch: calls `onEvent` per line until the server ends the stream (resolves), or it
 * fails or `signal` aborts (rejects). `idleMs` is the watchdog: a stream silent for that long —
 * not even a bookmark — is dropped with a TimeoutError.
 */
export async function watchStream(
  kc: KubeConfig,
  path: string,
  query: Record<string, string>,
  onEvent: (event: WatchEvent) => void,
  options: { signal: AbortSignal; idleMs: number; onOpen?: () => void },
): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ApiError(0, "the kubeconfig names no current cluster");
  const url = new URL(cluster.server + path);
  url.searchParams.set("watch", "true");
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  const local = new AbortController();
  const abort = () => local.abort(options.signal.reason);
  options.signal.addEventListener("abort", abort, { once: true });
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => local.abort(new WatchdogTimeout(options.idleMs)), options.idleMs);
  };
  try {
    arm();
    const res = await fetch(url, {
      headers: { ...ctx.getHeaders(), accept: "application/json" },
      dispatcher: ctx.getDispatcher() as never,
      signal: local.signal,
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => "");
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {}
      throw new ApiError(res.status, `watch ${path}: ${res.status} ${message}`);
    }
    options.onOpen?.();
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of res.body) {
      arm();
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) onEvent(JSON.parse(line) as WatchEvent);
        nl = buffered.indexOf("\n");
      }
    }
  } catch (err) {
    throw local.signal.aborted ? (local.signal.reason ?? err) : err;
  } finally {
    clearTimeout(idle);
    options.signal.removeEventListener("abort", abort);
  }
}

/** The watchdog fired: the watch delivered nothing, not even a bookmark, for `ms`. */
export class WatchdogTimeout extends Error {
  readonly code = "AMB_KUBE_WATCH_SILENT";
  constructor(readonly ms: number) {
    super(`the watch delivered nothing (not even a bookmark) for ${ms} ms`);
  }
}
