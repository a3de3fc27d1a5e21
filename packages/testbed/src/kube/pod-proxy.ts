// The kubelet's part of `pods/<name>:<port>/proxy/<path>`: the API server forwards the request to
// the pod's IP and port over plain HTTP and streams the answer back (istioctl and ambientctl read
// ztunnel's admin port this way). Hop-by-hop headers and the client's credentials stay behind.

import type { IncomingMessage, ServerResponse } from "node:http";
import { request } from "node:http";
import type { KubeObject } from "../apiserver/store.js";

// What the real API server's proxy drops before dialing the pod (RFC 9110 hop-by-hop, plus auth).
const DROPPED = new Set([
  "host",
  "connection",
  "keep-alive",
  "upgrade",
  "transfer-encoding",
  "authorization",
]);
// A pod that accepts but never answers must not hold the API server's request forever.
const POD_TIMEOUT_MS = 30_000;

export function proxyToPod(
  pod: KubeObject,
  port: string,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const ip = (pod.status as { podIP?: string } | undefined)?.podIP;
  const query = new URL(req.url ?? "/", "http://x").search;
  const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !DROPPED.has(k)));
  return new Promise((resolve, reject) => {
    const upstream = request(
      {
        host: ip,
        port: Number(port),
        method: req.method,
        path: `/${path.replace(/^\//, "")}${query}`,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on("end", () => resolve());
        answer.on("error", reject);
      },
    );
    upstream.setTimeout(POD_TIMEOUT_MS, () =>
      upstream.destroy(new Error(`pod ${ip}:${port} did not answer in ${POD_TIMEOUT_MS} ms`)),
    );
    upstream.on("error", reject);
    req.pipe(upstream);
  });
}
