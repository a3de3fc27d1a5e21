// A DaemonSet's template history as ControllerRevisions, as the real controller keeps it: one per
// distinct template, named `<ds>-<hash>` with label controller-revision-hash and a rising
// `revision` (a template seen before, as after `kubectl rollout undo`, becomes the newest again);
// revisions no pod runs beyond revisionHistoryLimit are deleted.

import type { KubeObject, Pod } from "@ambient/kube";
import { apiStatusOf } from "@ambient/kube/api";
import { DS_TEMPLATE_GENERATION } from "../../apiserver/defaults.js";
import type { KubeClient } from "../client.js";
import {
  controllerOf,
  ownerRef,
  type PodTemplate,
  sameTemplate,
  templateHash,
  type Workload,
  type WorkloadSpec,
} from "./workload.js";

export const REVISION_HASH = "controller-revision-hash";
export const TEMPLATE_GENERATION = "pod-template-generation";
const DEFAULT_HISTORY_LIMIT = 10;

export type DaemonSet = Workload<
  WorkloadSpec & {
    updateStrategy?: { type?: string; rollingUpdate?: { maxSurge?: unknown; maxUnavailable?: unknown } };
  }
>;

type Revision = KubeObject & { data?: { spec?: { template?: PodTemplate } }; revision?: number };

/** k8s IsPodUpdated: the revision hash label matches, or the template generation label does. */
export function isPodUpdated(ds: DaemonSet, pod: Pod, hash: string): boolean {
  const labels = pod.metadata.labels ?? {};
  const generation = ds.metadata.annotations?.[DS_TEMPLATE_GENERATION];
  return (
    labels[REVISION_HASH] === hash || (generation !== undefined && labels[TEMPLATE_GENERATION] === generation)
  );
}

function owned(ds: DaemonSet, revisions: readonly KubeObject[]): Revision[] {
  return revisions.filter((r) => controllerOf(r)?.uid === ds.metadata.uid) as Revision[];
}

/** The hash of the DaemonSet's template, its ControllerRevision made (or made newest) if needed. */
export async function currentRevision(
  client: KubeClient,
  ds: DaemonSet,
  revisions: readonly KubeObject[],
): Promise<string> {
  const template = ds.spec?.template ?? {};
  const mine = owned(ds, revisions);
  const max = Math.max(0, ...mine.map((r) => r.revision ?? 0));
  const ns = ds.metadata.namespace ?? "default";
  const match = mine.find((r) => sameTemplate(r.data?.spec?.template, template, REVISION_HASH));
  if (match) {
    const hash = match.metadata.labels?.[REVISION_HASH] ?? templateHash(template);
    if ((match.revision ?? 0) < max) {
      await client.mergePatch(`/apis/apps/v1/namespaces/${ns}/controllerrevisions/${match.metadata.name}`, {
        revision: max + 1,
      });
    }
    return hash;
  }
  const hash = templateHash(template);
  try {
    await client.request("POST", `/apis/apps/v1/namespaces/${ns}/controllerrevisions`, {
      apiVersion: "apps/v1",
      kind: "ControllerRevision",
      metadata: {
        name: `${ds.metadata.name}-${hash}`,
        namespace: ns,
        labels: { ...template.metadata?.labels, [REVISION_HASH]: hash },
        ownerReferences: [ownerRef(ds)],
      },
      data: { spec: { template: { ...template, $patch: "replace" } } },
      revision: max + 1,
    });
  } catch (err) {
    // Made by an earlier sync the cache has not shown yet.
    if (apiStatusOf(err) !== 409) throw err;
  }
  return hash;
}

/** Revisions beyond revisionHistoryLimit that are neither current nor run by a pod go, oldest first. */
export async function truncateHistory(
  client: KubeClient,
  ds: DaemonSet,
  revisions: readonly KubeObject[],
  pods: readonly Pod[],
  hash: string,
): Promise<void> {
  const limit = ds.spec?.revisionHistoryLimit ?? DEFAULT_HISTORY_LIMIT;
  const inUse = new Set(
    pods.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.labels?.[REVISION_HASH]),
  );
  const idle = owned(ds, revisions)
    .filter(
      (r) => r.metadata.labels?.[REVISION_HASH] !== hash && !inUse.has(r.metadata.labels?.[REVISION_HASH]),
    )
    .sort((a, b) => (a.revision ?? 0) - (b.revision ?? 0));
  for (const r of idle.slice(0, Math.max(0, idle.length - limit))) {
    await client.delete(
      `/apis/apps/v1/namespaces/${r.metadata.namespace}/controllerrevisions/${r.metadata.name}`,
    );
  }
}
