// `kubectl apply --server-side` of a manifests folder: every object the folder holds (status left
// out: the kubelet and controllers own it), Namespaces and ServiceAccounts first so the objects in
// them are admitted, each through server-side apply with one field manager. Every refusal is
// collected and reported together, naming the object and the file.

import { AmbientError, ErrorCode, type Logger } from "@ambient/core";
import { isNode, isPod, type KubeObject } from "@ambient/kube";
import { ManifestStore } from "@ambient/kube/manifests";
import type { KubeClient } from "./client.js";

export const FIELD_MANAGER = "ambientctl";

/** Kinds applied before the rest, in this order (kubectl applies a folder in file order instead). */
const FIRST = ["CustomResourceDefinition", "Namespace", "ServiceAccount"];

export interface FolderObjects {
  objects: KubeObject[];
  /** Nodes the folder names: its Node objects and every pod's spec.nodeName. */
  nodes: string[];
}

/** Reads `dir` as the local mode reads it; a file that does not parse is an error here. */
export async function readFolder(dir: string, logger: Logger): Promise<FolderObjects> {
  const store = new ManifestStore(dir, logger);
  await store.reload();
  const problems = store.problems();
  if (problems.length > 0) {
    const lines = problems.map(
      (p) => `${p.source.file}#${p.source.index}${p.path ? ` ${p.path}` : ""}: ${p.message}`,
    );
    throw new AmbientError(
      ErrorCode.CONFIG_INVALID,
      `${dir} has objects that cannot be applied:\n  - ${lines.join("\n  - ")}`,
      {
        details: { problems: lines },
      },
    );
  }
  const objects = store.objects();
  const nodes = new Set<string>();
  for (const o of objects) {
    if (isNode(o)) nodes.add(o.metadata.name);
    else if (isPod(o) && o.spec?.nodeName && !o.spec.hostNetwork) nodes.add(o.spec.nodeName);
  }
  return { objects, nodes: [...nodes].sort() };
}

/** Applies `objects` (dependencies first); throws once with every object the API server refused. */
export async function applyObjects(client: KubeClient, objects: readonly KubeObject[]): Promise<void> {
  const rank = (o: KubeObject) => {
    const i = FIRST.indexOf(o.kind);
    return i < 0 ? FIRST.length : i;
  };
  const ordered = [...objects].sort((a, b) => rank(a) - rank(b));
  const refused: string[] = [];
  for (const o of ordered) {
    try {
      await client.apply(forApply(o), FIELD_MANAGER);
    } catch (err) {
      const ns = o.metadata.namespace ? `${o.metadata.namespace}/` : "";
      refused.push(`${o.kind} ${ns}${o.metadata.name}: ${(err as Error).message}`);
    }
  }
  if (refused.length > 0) {
    throw new AmbientError(
      ErrorCode.CONFIG_INVALID,
      `the API server refused:\n  - ${refused.join("\n  - ")}`,
      {
        details: { refused },
      },
    );
  }
}

/** The object as a user's apply sends it: no status, no server-owned metadata. */
function forApply(o: KubeObject): KubeObject {
  const {
    uid: _uid,
    resourceVersion: _rv,
    creationTimestamp: _ct,
    managedFields: _mf,
    generation: _g,
    ...metadata
  } = o.metadata as KubeObject["metadata"] & Record<string, unknown>;
  const { status: _status, ...rest } = o;
  return { ...rest, metadata };
}
