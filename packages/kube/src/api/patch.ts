// The one kind of write a node component makes: a JSON merge patch (RFC 7386; `null` removes a key),
// authenticated as the kubeconfig says, through the same HTTP stack the reflectors use. The CNI
// agent marks pods with it on their status subresource, as Istio's CNI agent does.

import type { KubeConfig } from "@kubernetes/client-node";
import { requestJson } from "./http.js";

/** PATCHes `path` with `body` as `application/merge-patch+json`; ApiError (with the status) on a non-2xx. */
export async function mergePatch(kc: KubeConfig, path: string, body: unknown): Promise<void> {
  await requestJson(kc, "PATCH", path, body, { contentType: "application/merge-patch+json" });
}
