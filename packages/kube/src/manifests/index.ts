// @ambient/kube/manifests: a folder of Kubernetes YAML as an object source. A subpath of its own
// because it brings the YAML parsers and the file watcher, which a node agent in a cluster never loads.
export { FolderSource } from "./folder-source.js";
export { ManifestStore } from "./store.js";
export { FolderWatcher } from "./watcher.js";
