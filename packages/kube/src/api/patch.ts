// The one kind of write a node component makes: a JSON merge patch (RFC 7386; `null` removes a key),
// authenticated as the kubeconfig says, through the same HTTP stack the reflectors use. The CNI
// agent marks pods with it on their status subresource, as Istio's CNI agent does.

import { HttpMethod, type KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fetch } from "undici";
import { ApiError } from "./http.js";

// A patch is answered in milliseconds; this only keeps one from hanging the caller's queue.
const PATCH_TIMEOUT_MS = 15_000;

/** PATCHes `path` with `body` as `application/merge-patch+json`; ApiError (with the status) on a non-2xx. */
export async function mergePatch(kc: KubeConfig, path: string, body: unknown): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ApiError(0, "the kubeconfig names no current cluster");
  const url = new URL(cluster.server + path);
  const ctx = new RequestContext(url.toString(), HttpMethod.PATCH);
  await kc.applySecurityAuthentication(ctx);
  const res = await fetch(url, {
    method: "PATCH",
    headers: {
      ...ctx.getHeaders(),
      accept: "application/json",
      "content-type": "application/merge-patch+json",
    },
    body: JSON.stringify(body),
    dispatcher: ctx.getDispatcher() as never,
    signal: AbortSignal.timeout(PATCH_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {}
    throw new ApiError(res.status, `PATCH ${path}: ${res.status} ${message}`);
  }
}
