// kube-scheduler, reduced to what one machine needs: every pod without spec.nodeName (and for the
// default scheduler) is bound through pods/binding to a Ready, schedulable node whose labels match
// its nodeSelector, spreading replicas: the node with the fewest pods of the same controller, then
// the fewest pods. A pod no node fits stays Pending with PodScheduled=False, reason Unschedulable,
// and is tried again whenever nodes or pods change.

import type { KubeObject, Pod } from "@ambient/kube";
import { apiStatusOf } from "@ambient/kube/api";
import { now } from "../../apiserver/objects.js";
import { podPath } from "../client.js";
import { Controller, type ControllerDeps } from "./controller.js";
import { controllerOf, isActive, KINDS } from "./workload.js";

const SCHEDULER_NAME = "default-scheduler";

interface NodeObj
  extends KubeObject<{ unschedulable?: boolean }, { conditions?: { type: string; status: string }[] }> {}

export class Scheduler extends Controller {
  /** Bindings made but not yet seen in the cache (kube-scheduler's assumed pods), pod uid → node. */
  private readonly assumed = new Map<string, string>();

  constructor(d: ControllerDeps) {
    super("scheduler", [KINDS.pod, KINDS.node], d);
  }

  protected async sync(): Promise<void> {
    const pods = this.list<Pod>("Pod");
    const nodes = this.list<NodeObj>("Node").filter(schedulable);
    for (const uid of this.assumed.keys()) {
      const p = pods.find((x) => x.metadata.uid === uid);
      if (!p || p.spec?.nodeName) this.assumed.delete(uid);
    }
    const waiting = pods.filter(
      (p) =>
        !p.spec?.nodeName &&
        !this.assumed.has(p.metadata.uid!) &&
        isActive(p) &&
        (p.spec?.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME,
    );
    for (const pod of waiting) {
      const fits = nodes.filter((n) => matchesNodeSelector(pod, n));
      if (fits.length === 0) {
        await this.markUnschedulable(pod, unschedulableMessage(nodes.length));
        continue;
      }
      const node = this.pick(pod, fits, pods);
      await this.bind(pod, node);
    }
  }

  /** Fewest pods of the same controller, then fewest pods, then name (stable). */
  private pick(pod: Pod, nodes: NodeObj[], pods: Pod[]): string {
    const owner = controllerOf(pod)?.uid;
    const placed = (n: string) =>
      pods.filter((p) => isActive(p) && (p.spec?.nodeName ?? this.assumed.get(p.metadata.uid!)) === n);
    const score = (n: string) => {
      const on = placed(n);
      return [owner ? on.filter((p) => controllerOf(p)?.uid === owner).length : 0, on.length] as const;
    };
    const ranked = nodes
      .map((n) => ({ name: n.metadata.name, s: score(n.metadata.name) }))
      .sort((a, b) => a.s[0] - b.s[0] || a.s[1] - b.s[1] || (a.name < b.name ? -1 : 1));
    return ranked[0]!.name;
  }

  private async bind(pod: Pod, node: string): Promise<void> {
    const ns = pod.metadata.namespace ?? "default";
    try {
      await this.d.client.request("POST", `${podPath(ns, pod.metadata.name)}/binding`, {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: pod.metadata.name, namespace: ns, uid: pod.metadata.uid },
        target: { apiVersion: "v1", kind: "Node", name: node },
      });
      this.assumed.set(pod.metadata.uid!, node);
      this.log.info({ pod: `${ns}/${pod.metadata.name}`, node }, "pod bound");
    } catch (err) {
      // Bound meanwhile (our cache lagged) or gone: nothing to do.
      const code = apiStatusOf(err);
      if (code !== 409 && code !== 404) throw err;
    }
  }

  private async markUnschedulable(pod: Pod, message: string): Promise<void> {
    const current = pod.status?.conditions?.find((c) => c.type === "PodScheduled") as
      | { status: string; reason?: string; message?: string }
      | undefined;
    if (current?.status === "False" && current.reason === "Unschedulable" && current.message === message)
      return;
    const conditions = (pod.status?.conditions ?? []).filter((c) => c.type !== "PodScheduled");
    conditions.push({
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
      message,
      lastTransitionTime: now(),
    } as (typeof conditions)[number]);
    const ns = pod.metadata.namespace ?? "default";
    await this.d.client
      .mergePatch(`${podPath(ns, pod.metadata.name)}/status`, { status: { conditions } })
      .catch((err: unknown) => {
        if (apiStatusOf(err) !== 404) throw err;
      });
    this.log.info({ pod: `${ns}/${pod.metadata.name}`, message }, "pod unschedulable");
  }
}

function schedulable(n: NodeObj): boolean {
  if (n.spec?.unschedulable) return false;
  return n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** spec.nodeSelector: every pair must be a label of the node. */
export function matchesNodeSelector(
  pod: Pod | { spec?: Record<string, unknown> },
  node: KubeObject,
): boolean {
  const selector = (pod.spec?.nodeSelector ?? {}) as Record<string, string>;
  const labels = node.metadata.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** kube-scheduler's FitError message for the node-selector filter. */
function unschedulableMessage(nodeCount: number): string {
  if (nodeCount === 0) return "no nodes available to schedule pods";
  return `0/${nodeCount} nodes are available: ${nodeCount} node(s) didn't match Pod's node affinity/selector.`;
}
