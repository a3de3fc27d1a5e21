// Where the agent records `ambient.istio.io/redirection: enabled` on a pod. In a cluster this is a
// merge patch of the pod's status (kube-annotator.ts); with a manifests folder (local/netns modes)
// there is no API server to write to, so the annotations go to a JSON file in the agent's state
// folder that ambientctl and the tests read.

import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Istio's mark of a pod whose traffic the node agent redirects to ztunnel. */
export const REDIRECTION_ANNOTATION = "ambient.istio.io/redirection";

export interface PodAnnotator {
  /** Sets our annotations on a pod (undefined: removes them). */
  set(namespace: string, name: string, annotations: Record<string, string> | undefined): void;
}

export const ANNOTATIONS_FILE = "annotations.json";

export class FileAnnotator implements PodAnnotator {
  private readonly current = new Map<string, Record<string, string>>();

  constructor(private readonly stateDir: string) {}

  set(namespace: string, name: string, annotations: Record<string, string> | undefined): void {
    const key = `${namespace}/${name}`;
    if (annotations) this.current.set(key, annotations);
    else if (!this.current.delete(key)) return;
    mkdirSync(this.stateDir, { recursive: true });
    const tmp = join(this.stateDir, `.${ANNOTATIONS_FILE}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries([...this.current].sort()), null, 2)}\n`);
    renameSync(tmp, join(this.stateDir, ANNOTATIONS_FILE));
  }
}
