// Where objects come from. A source holds the objects in force (the last good version of each)
// and says when they changed; the control plane, the CNI node agent and the test harnesses read
// every source the same way. Today: a manifests folder (`@ambient/kube/manifests`); next to it,
// the Kubernetes API.

import type { KubeObject } from "./model/index.js";

/** Where a problem was found: a file and document in a folder, or an object in the API. */
export interface SourceRef {
  /** Path relative to the manifests folder with forward slashes, or `<kind>/<ns>/<name>` for the API. */
  file: string;
  /** 0-based index of the document inside the file (0 for API objects). */
  index: number;
}

export interface SourceProblem {
  source: SourceRef;
  /** Field path inside the object (`spec.rules[0].from`), empty for file-level problems. */
  path: string;
  message: string;
  /** Stable error code (AMB_MANIFEST_PARSE, AMB_OBJECT_INVALID, AMB_OBJECT_UNKNOWN_KIND). */
  code: string;
}

export interface ObjectSource {
  /** Loads what is there now, then follows changes. Resolves once the first load is in force. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Catches up now (a folder is re-read, a watch is resynced) and resolves once any change is in
   * force: a CNI ADD can arrive before the watch delivered the pod it is for. True when changed.
   */
  refresh(): Promise<boolean>;
  /** The objects in force, in a stable order (by key). */
  objects(): readonly KubeObject[];
  /** Problems with the objects as they are now (each is logged once by the source). */
  problems(): readonly SourceProblem[];
  /** Called after every batch of changes; returns a function that unsubscribes. */
  onChange(listener: () => void): () => void;
}

/** `file#document`, the form every problem is logged with. */
export function formatSource(s: SourceRef): string {
  return `${s.file}#${s.index}`;
}
