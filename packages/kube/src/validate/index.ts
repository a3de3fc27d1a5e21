// The structural gate every object passes: a supported apiVersion/kind and valid metadata. The
// control plane adds schema and Istio's semantic rules on top; a node agent that reads only Pods
// and Namespaces needs nothing more, so it does not load the schemas.

import { type KubeObject, namespaceOf } from "../model/index.js";
import { isRecord, type Problem, Problems } from "./problems.js";
import { checkTypeAndMeta } from "./structure.js";

export * from "./formats.js";
export * from "./problems.js";
export { checkTypeAndMeta } from "./structure.js";

export type ValidationResult = { ok: true; object: KubeObject } | { ok: false; problems: Problem[] };

/** Turns a parsed document into an object in force, or every reason it cannot be one. */
export type ObjectValidator = (obj: unknown) => ValidationResult;

/**
 * Structure only. On success `metadata.namespace` is filled in for namespaced kinds ("default"
 * when absent), so consumers never guess.
 */
export const validateStructure: ObjectValidator = (obj) => {
  const problems = new Problems();
  if (!isRecord(obj)) {
    problems.add("", "must be a mapping with apiVersion, kind and metadata (a Kubernetes object)");
    return { ok: false, problems: problems.list };
  }
  const info = checkTypeAndMeta(obj, problems);
  if (!info || problems.size > 0) return { ok: false, problems: problems.list };
  return withDefaultNamespace(obj as KubeObject, info.namespaced);
};

/** The object with its namespace filled in when its kind is namespaced and it named none. */
export function withDefaultNamespace(object: KubeObject, namespaced: boolean): ValidationResult {
  if (!namespaced || object.metadata.namespace) return { ok: true, object };
  return {
    ok: true,
    object: { ...object, metadata: { ...object.metadata, namespace: namespaceOf(object) } },
  };
}
