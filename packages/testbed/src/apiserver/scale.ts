// The scale subresource of Deployments and ReplicaSets (autoscaling/v1 Scale), which `kubectl
// scale` reads and patches: spec.replicas is the workload's, status the replicas it has and its
// selector as a string.

import { badRequest } from "./errors.js";
import type { ObjectService } from "./objects.js";
import { applyPatch, type PatchKind } from "./patch.js";
import type { ResourceType } from "./resources.js";
import type { KubeObject } from "./store.js";

export const SCALABLE_KINDS = ["Deployment", "ReplicaSet"];

export function scaleOf(obj: KubeObject): KubeObject {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
  const status = (obj.status ?? {}) as { replicas?: number };
  return {
    apiVersion: "autoscaling/v1",
    kind: "Scale",
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 1 },
    status: {
      replicas: status.replicas ?? 0,
      selector: Object.entries(spec.selector?.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    },
  };
}

/** PUT or PATCH of the Scale: only spec.replicas reaches the workload. */
export function writeScale(
  objects: ObjectService,
  type: ResourceType,
  ns: string | undefined,
  name: string,
  change: { put: unknown } | { patch: unknown; kind: Exclude<PatchKind, "apply"> },
): KubeObject {
  const current = scaleOf(objects.get(type, ns, name));
  const next = ("put" in change ? change.put : applyPatch(change.kind, current, change.patch as never)) as {
    spec?: { replicas?: unknown };
  };
  const replicas = next?.spec?.replicas;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
    throw badRequest(
      `Scale.spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be a non-negative integer`,
    );
  }
  return scaleOf(objects.patch(type, ns, name, "merge", { spec: { replicas } }, { fieldManager: "kubectl" }));
}
