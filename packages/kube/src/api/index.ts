// @ambient/kube/api: the Kubernetes API as an object source (reflectors per kind: paged list,
// watch with bookmarks, resume from the last version, relist on 410, watchdog, backoff), and the
// merge patch the CNI agent marks pods with. A subpath of its own so that folder-mode processes
// never load the client library.
export { KubeApiSource } from "./api-source.js";
export { loadKubeConfig } from "./kubeconfig.js";
export { mergePatch } from "./patch.js";
