// The kubelet's part of the pod subresources: `log` and `proxy` are answered by hooks the test
// (later the kubelet stand-in) installs. Without a hook the answer is 503, as when the API
// server cannot reach a kubelet; a pod without an IP or node is refused like the real one does.

import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiErrorCode, apiError, badRequest } from "./errors.js";
import type { KubeObject } from "./store.js";

export interface LogOptions {
  container?: string;
  follow: boolean;
  previous: boolean;
  tailLines?: number;
  timestamps: boolean;
  sinceSeconds?: number;
}

export interface PodBackends {
  /**
   * The container's log text (or a stream of it when following). `clientGone` aborts when the
   * client disconnects: a stream must then end.
   */
  log?: (
    pod: KubeObject,
    options: LogOptions,
    clientGone: AbortSignal,
  ) => Promise<string | AsyncIterable<string | Buffer>>;
  /**
   * Serves `proxy/<path>` for `pod` on `port` (the part after `name:` in the URL, or the first
   * container port). The hook writes the whole answer to `res`.
   */
  proxy?: (
    pod: KubeObject,
    port: string,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
  ) => Promise<void>;
}

function int(v: string | null): number | undefined {
  if (v === null) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid integer "${v}"`);
  return n;
}

export function logOptions(query: URLSearchParams, pod: KubeObject): LogOptions {
  const containers = ((pod.spec as { containers?: { name: string }[] } | undefined)?.containers ?? []).map(
    (c) => c.name,
  );
  const container = query.get("container") ?? undefined;
  if (container === undefined && containers.length > 1) {
    throw badRequest(
      `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(" ")}]`,
    );
  }
  if (container !== undefined && !containers.includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${pod.metadata.name}`);
  }
  const tailLines = int(query.get("tailLines"));
  const sinceSeconds = int(query.get("sinceSeconds"));
  return {
    container: container ?? containers[0],
    follow: query.get("follow") === "true",
    previous: query.get("previous") === "true",
    timestamps: query.get("timestamps") === "true",
    ...(tailLines !== undefined ? { tailLines } : {}),
    ...(sinceSeconds !== undefined ? { sinceSeconds } : {}),
  };
}

export async function serveLog(
  backends: PodBackends,
  pod: KubeObject,
  options: LogOptions,
  res: ServerResponse,
): Promise<void> {
  if (!backends.log)
    throw apiError(ApiErrorCode.BACKEND_UNAVAILABLE, "no kubelet serves pod logs in this test server");
  if (!(pod.spec as { nodeName?: string } | undefined)?.nodeName) {
    throw badRequest(`pod ${pod.metadata.name} does not have a host assigned`);
  }
  const clientGone = new AbortController();
  res.on("close", () => clientGone.abort());
  const body = await callLogBackend(backends.log, pod, options, clientGone.signal);
  res.writeHead(200, { "content-type": "text/plain" });
  if (typeof body === "string") {
    res.end(body);
    return;
  }
  // Following: the client sees the headers now, then each chunk as it is written.
  res.flushHeaders();
  for await (const chunk of body) {
    if (res.destroyed) break;
    res.write(chunk);
  }
  res.end();
}

async function callLogBackend(
  log: NonNullable<PodBackends["log"]>,
  pod: KubeObject,
  options: LogOptions,
  clientGone: AbortSignal,
): Promise<string | AsyncIterable<string | Buffer>> {
  try {
    return await log(pod, options, clientGone);
  } catch (err) {
    throw apiError(
      ApiErrorCode.BACKEND_UNAVAILABLE,
      `pod log backend failed: ${(err as Error).message}`,
      {},
      err,
    );
  }
}

/** `pods/<name>[:<port>]/proxy[/<path>]`: the port is the named or numbered one, else the first. */
export async function serveProxy(
  backends: PodBackends,
  pod: KubeObject,
  portSpec: string | undefined,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (!backends.proxy)
    throw apiError(ApiErrorCode.BACKEND_UNAVAILABLE, "no kubelet serves pod proxy in this test server");
  if (!(pod.status as { podIP?: string } | undefined)?.podIP) {
    throw badRequest(`pod ${pod.metadata.name} has no IP address yet`);
  }
  const ports = (
    (pod.spec as { containers?: { ports?: { name?: string; containerPort: number }[] }[] } | undefined)
      ?.containers ?? []
  ).flatMap((c) => c.ports ?? []);
  let port = portSpec;
  if (port !== undefined && !/^\d+$/.test(port)) {
    const named = ports.find((p) => p.name === port);
    if (!named) throw badRequest(`pod ${pod.metadata.name} has no port named "${port}"`);
    port = String(named.containerPort);
  }
  port ??= ports[0] ? String(ports[0].containerPort) : "80";
  try {
    await backends.proxy(pod, port, path, req, res);
  } catch (err) {
    throw apiError(
      ApiErrorCode.BACKEND_UNAVAILABLE,
      `error trying to reach service: ${(err as Error).message}`,
      {},
      err,
    );
  }
}
