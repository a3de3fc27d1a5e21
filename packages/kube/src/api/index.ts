// @ambient/kube/api: the Kubernetes API as an object source (reflectors per kind: paged list,
// watch with bookmarks, resume from the last version, relist on 410, watchdog, backoff), and the
// writes components make (the CNI agent's merge patch, the control plane's TokenReviews, and
// server-side apply for controllers and ambientctl). A subpath of its own so that folder-mode
// processes never load the client library.

export type { KubeConfig } from "@kubernetes/client-node";
export { KubeApiSource } from "./api-source.js";
export { objectPath, serverSideApply } from "./apply.js";
export { ApiError, apiStatusOf, getJson, type ResourceRef, requestJson } from "./http.js";
export { loadKubeConfig, loadUserKubeConfig } from "./kubeconfig.js";
export { mergePatch } from "./patch.js";
export { Reflector } from "./reflector.js";
