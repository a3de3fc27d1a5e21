// @ambient/kube/manifests: a folder of Kubernetes YAML as an object source. A subpath of its own
// because it brings the YAML parsers and the file watcher, which a node agent in a cluster never loads.
export { FolderSource, type FolderSourceOptions } from "./folder-source.js";
export {
  type FileLoad,
  type LoadedDocument,
  listManifestFiles,
  loadFile,
  type ManifestProblem,
  parseManifestText,
} from "./loader.js";
export { ManifestStore, type ReloadResult, type StoredObject } from "./store.js";
export { FolderWatcher, WATCH_DEBOUNCE_MS } from "./watcher.js";
