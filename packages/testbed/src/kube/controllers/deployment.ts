// The Deployment controller: a ReplicaSet per pod template (`<deploy>-<pod-template-hash>`, label
// pod-template-hash, annotation deployment.kubernetes.io/revision), rolled as Kubernetes rolls
// (rolling.ts), old ReplicaSets kept per revisionHistoryLimit, and the status `kubectl rollout
// status` and `helm install --wait` read: replica counts, observedGeneration, and the conditions
// Available (MinimumReplicasAvailable) and Progressing (NewReplicaSetCreated, ReplicaSetUpdated,
// NewReplicaSetAvailable). Progress deadlines and pausing are not implemented (README).

import { type KubeObject, matchesLabelSelector } from "@ambient/kube";
import { apiStatusOf } from "@ambient/kube/api";
import { now } from "../../apiserver/objects.js";
import { Controller, type ControllerDeps } from "./controller.js";
import type { ReplicaSet } from "./replicaset.js";
import { type Fenceposts, fenceposts, recreate, rolling } from "./rolling.js";
import {
  controllerOf,
  KINDS,
  ownerRef,
  type PodTemplate,
  sameTemplate,
  templateHash,
  type Workload,
  type WorkloadSpec,
} from "./workload.js";

export const POD_TEMPLATE_HASH = "pod-template-hash";
export const REVISION = "deployment.kubernetes.io/revision";
const DEFAULT_HISTORY_LIMIT = 10;

interface DeploymentSpec extends WorkloadSpec {
  strategy?: { type?: string; rollingUpdate?: { maxSurge?: unknown; maxUnavailable?: unknown } };
}
export type Deployment = Workload<DeploymentSpec>;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

export class DeploymentController extends Controller {
  constructor(d: ControllerDeps) {
    super("deployment-controller", [KINDS.deployment, KINDS.replicaSet, KINDS.pod], d);
  }

  protected async sync(): Promise<void> {
    const all = this.list<ReplicaSet>("ReplicaSet");
    for (const d of this.list<Deployment>("Deployment")) {
      if (d.metadata.deletionTimestamp) continue;
      const mine = all.filter(
        (rs) => rs.metadata.namespace === d.metadata.namespace && controllerOf(rs)?.uid === d.metadata.uid,
      );
      await this.syncOne(d, mine);
    }
  }

  private async syncOne(d: Deployment, owned: ReplicaSet[]): Promise<void> {
    const template = d.spec?.template ?? {};
    let created = false;
    let newRS = owned.find((rs) => sameTemplate(rs.spec?.template, template, POD_TEMPLATE_HASH));
    const old = owned.filter((rs) => rs !== newRS);
    const maxOldRevision = Math.max(0, ...old.map(revisionOf));
    if (!newRS) {
      newRS = await this.createReplicaSet(d, template, maxOldRevision + 1);
      if (!newRS) return;
      created = true;
    } else if (revisionOf(newRS) <= maxOldRevision) {
      // `kubectl rollout undo`: an old template is the newest revision again.
      await this.patchRS(newRS, { metadata: { annotations: { [REVISION]: String(maxOldRevision + 1) } } });
    }
    await this.annotateRevision(d, newRS);
    const f = fenceposts(d);
    const scale = (rs: ReplicaSet, replicas: number) => this.scaleRS(rs, replicas);
    if (f.type === "Recreate") await recreate(d, newRS, old, this.podsOf(old), scale);
    else await rolling(d, newRS, old, f, scale);
    if (isComplete(d, newRS, old)) await this.cleanup(d, old);
    await this.writeStatus(d, newRS, old, f, created);
  }

  /** Pods (any state) of the old ReplicaSets: Recreate waits for all of them to be gone. */
  private podsOf(rss: ReplicaSet[]): number {
    const uids = new Set(rss.map((rs) => rs.metadata.uid));
    return this.list("Pod").filter((p) => uids.has(controllerOf(p)?.uid)).length;
  }

  private async createReplicaSet(
    d: Deployment,
    template: PodTemplate,
    revision: number,
  ): Promise<ReplicaSet | undefined> {
    const hash = templateHash(
      template,
      Number((d.status as { collisionCount?: number })?.collisionCount ?? 0),
    );
    const labels = { ...template.metadata?.labels, [POD_TEMPLATE_HASH]: hash };
    const ns = d.metadata.namespace ?? "default";
    const rs: ReplicaSet = {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name: `${d.metadata.name}-${hash}`,
        namespace: ns,
        labels,
        annotations: {
          [REVISION]: String(revision),
          "deployment.kubernetes.io/desired-replicas": String(d.spec?.replicas ?? 1),
        },
        ownerReferences: [ownerRef(d)],
      },
      spec: {
        replicas: 0,
        minReadySeconds: d.spec?.minReadySeconds ?? 0,
        selector: {
          ...d.spec?.selector,
          matchLabels: { ...d.spec?.selector?.matchLabels, [POD_TEMPLATE_HASH]: hash },
        },
        template: { ...template, metadata: { ...template.metadata, labels } },
      },
    };
    if (!matchesLabelSelector(d.spec?.selector ?? {}, template.metadata?.labels)) {
      this.log.warn(
        { deployment: `${ns}/${d.metadata.name}` },
        "spec.selector does not match the template's labels",
      );
      return undefined;
    }
    try {
      const made = await this.d.client.request<ReplicaSet>(
        "POST",
        `/apis/apps/v1/namespaces/${ns}/replicasets`,
        rs,
      );
      this.log.info(
        { deployment: `${ns}/${d.metadata.name}`, rs: made.metadata.name, revision },
        "new ReplicaSet",
      );
      return made;
    } catch (err) {
      // Made by an earlier sync our cache has not shown yet: the next sync finds it.
      if (apiStatusOf(err) === 409) return undefined;
      throw err;
    }
  }

  private async scaleRS(rs: ReplicaSet, replicas: number): Promise<void> {
    if ((rs.spec?.replicas ?? 1) === replicas) return;
    await this.patchRS(rs, { spec: { replicas } });
    rs.spec = { ...rs.spec, replicas };
  }

  private async patchRS(rs: ReplicaSet, patch: unknown): Promise<void> {
    const ns = rs.metadata.namespace ?? "default";
    await this.d.client.mergePatch(`/apis/apps/v1/namespaces/${ns}/replicasets/${rs.metadata.name}`, patch);
  }

  /** The Deployment carries its newest revision, as `kubectl rollout history` shows. */
  private async annotateRevision(d: Deployment, newRS: ReplicaSet): Promise<void> {
    const revision = String(Math.max(revisionOf(newRS), 1));
    if (d.metadata.annotations?.[REVISION] === revision) return;
    const ns = d.metadata.namespace ?? "default";
    await this.d.client.mergePatch(`/apis/apps/v1/namespaces/${ns}/deployments/${d.metadata.name}`, {
      metadata: { annotations: { [REVISION]: revision } },
    });
  }

  /** Old ReplicaSets scaled to nothing beyond revisionHistoryLimit go, oldest revision first. */
  private async cleanup(d: Deployment, old: ReplicaSet[]): Promise<void> {
    const limit = d.spec?.revisionHistoryLimit ?? DEFAULT_HISTORY_LIMIT;
    const idle = old
      .filter((rs) => !rs.metadata.deletionTimestamp && (rs.spec?.replicas ?? 0) === 0)
      .filter((rs) => Number((rs.status as { replicas?: number } | undefined)?.replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      const ns = rs.metadata.namespace ?? "default";
      await this.d.client.delete(`/apis/apps/v1/namespaces/${ns}/replicasets/${rs.metadata.name}`);
    }
  }

  private async writeStatus(
    d: Deployment,
    newRS: ReplicaSet,
    old: ReplicaSet[],
    f: Fenceposts,
    created: boolean,
  ): Promise<void> {
    const all = [newRS, ...old];
    const sum = (field: string) => all.reduce((n, rs) => n + count(rs, field), 0);
    const want = d.spec?.replicas ?? 1;
    const available = sum("availableReplicas");
    const specTotal = all.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0);
    const previous = ((d.status as { conditions?: Condition[] } | undefined)?.conditions ??
      []) as Condition[];
    const minAvailable = want - (f.type === "Recreate" ? 0 : f.maxUnavailable);
    const availableCond =
      available >= minAvailable
        ? cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        : cond(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
          );
    const name = newRS.metadata.name;
    const progressing = created
      ? cond("Progressing", "True", "NewReplicaSetCreated", `Created new replica set "${name}"`)
      : isComplete(d, newRS, old)
        ? cond(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            `ReplicaSet "${name}" has successfully progressed.`,
          )
        : cond("Progressing", "True", "ReplicaSetUpdated", `ReplicaSet "${name}" is progressing.`);
    const status = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: sum("replicas"),
      updatedReplicas: count(newRS, "replicas"),
      readyReplicas: sum("readyReplicas"),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, specTotal - available),
      conditions: [availableCond, progressing].map((c) => keepTimes(c, previous)),
    };
    const current = (d.status ?? {}) as Record<string, unknown>;
    const strip = (c: unknown) =>
      JSON.stringify(
        ((c ?? []) as Condition[]).map(({ lastUpdateTime: _u, lastTransitionTime: _t, ...rest }) => rest),
      );
    const same =
      Object.entries(status).every(([k, v]) => k === "conditions" || (current[k] ?? 0) === v) &&
      strip(current.conditions) === strip(status.conditions);
    if (same) return;
    const ns = d.metadata.namespace ?? "default";
    await this.d.client
      .mergePatch(`/apis/apps/v1/namespaces/${ns}/deployments/${d.metadata.name}/status`, { status })
      .catch((err: unknown) => {
        if (apiStatusOf(err) !== 404) throw err;
      });
  }
}

/** k8s DeploymentComplete: every replica updated and available, no old replica left. */
function isComplete(d: Deployment, newRS: ReplicaSet, old: ReplicaSet[]): boolean {
  const want = d.spec?.replicas ?? 1;
  const oldLeft = old.reduce((n, rs) => n + count(rs, "replicas") + (rs.spec?.replicas ?? 0), 0);
  return (
    (newRS.spec?.replicas ?? 0) === want &&
    count(newRS, "replicas") === want &&
    count(newRS, "availableReplicas") === want &&
    oldLeft === 0
  );
}

function count(rs: KubeObject, field: string): number {
  return Number((rs.status as Record<string, unknown> | undefined)?.[field] ?? 0);
}

function revisionOf(rs: KubeObject): number {
  return Number(rs.metadata.annotations?.[REVISION] ?? 0) || 0;
}

function cond(type: string, status: string, reason: string, message: string): Condition {
  return { type, status, reason, message };
}

/** lastTransitionTime moves only when the status flips; lastUpdateTime when anything changes. */
function keepTimes(c: Condition, previous: Condition[]): Condition {
  const at = now();
  const before = previous.find((p) => p.type === c.type);
  const same =
    before && before.status === c.status && before.reason === c.reason && before.message === c.message;
  return {
    ...c,
    lastUpdateTime: same ? (before.lastUpdateTime ?? at) : at,
    lastTransitionTime: before && before.status === c.status ? (before.lastTransitionTime ?? at) : at,
  };
}
