// What the workload controllers share, with Kubernetes' rules: the kinds they follow, a pod's
// state (active, ready, available after minReadySeconds), the controller reference, a pod made
// from a template, the template hash (fnv-32a, safe-encoded as k8s' ComputeHash) and
// IntOrString scaling (maxSurge rounds up, maxUnavailable down).

import { AmbientError, ErrorCode } from "@ambient/core";
import type { KindInfo, KubeObject, LabelSelector, OwnerReference, Pod } from "@ambient/kube";
import { podPath } from "../client.js";

const kind = (group: string, k: string, plural: string, namespaced = true): KindInfo => ({
  group,
  kind: k,
  versions: ["v1"],
  namespaced,
  plural,
});
export const KINDS = {
  pod: kind("", "Pod", "pods"),
  node: kind("", "Node", "nodes", false),
  replicaSet: kind("apps", "ReplicaSet", "replicasets"),
  deployment: kind("apps", "Deployment", "deployments"),
  daemonSet: kind("apps", "DaemonSet", "daemonsets"),
  controllerRevision: kind("apps", "ControllerRevision", "controllerrevisions"),
} as const;

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** The spec fields the apps/v1 workload kinds share. */
export interface WorkloadSpec {
  replicas?: number;
  selector?: LabelSelector;
  template?: PodTemplate;
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
}

export type Workload<Spec = WorkloadSpec> = KubeObject<Spec, Record<string, unknown>>;

export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

export function ownerRef(owner: KubeObject): OwnerReference & { blockOwnerDeletion: boolean } {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Counted by controllers: not being deleted and not finished. */
export function isActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return !pod.metadata.deletionTimestamp && phase !== "Succeeded" && phase !== "Failed";
}

export function isReady(pod: Pod): boolean {
  return readyCondition(pod)?.status === "True";
}

/**
 * Ready for at least minReadySeconds (k8s IsPodAvailable); otherwise the milliseconds until it
 * will be, so the controller can look again then. A terminating pod is never available.
 */
export function availability(pod: Pod, minReadySeconds = 0): { available: boolean; inMs?: number } {
  if (pod.metadata.deletionTimestamp || !isReady(pod)) return { available: false };
  if (minReadySeconds <= 0) return { available: true };
  const since = Date.parse(String(readyCondition(pod)?.lastTransitionTime ?? ""));
  if (Number.isNaN(since)) return { available: true };
  const inMs = since + minReadySeconds * 1000 - Date.now();
  return inMs <= 0 ? { available: true } : { available: false, inMs };
}

function readyCondition(pod: Pod): { status: string; lastTransitionTime?: unknown } | undefined {
  return pod.status?.conditions?.find((c) => c.type === "Ready");
}

/** A new pod of `owner` from `template`, named `<prefix><5 random chars>` by the API server's generateName. */
export function podFromTemplate(
  owner: KubeObject,
  template: PodTemplate,
  prefix: string,
  extra: { labels?: Record<string, string>; nodeName?: string } = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "",
      generateName: prefix,
      namespace: owner.metadata.namespace ?? "default",
      labels: { ...template.metadata?.labels, ...extra.labels },
      ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
      ownerReferences: [ownerRef(owner)],
    },
    spec: {
      ...structuredClone(template.spec ?? {}),
      ...(extra.nodeName ? { nodeName: extra.nodeName } : {}),
    },
  };
}

/** Creates a pod through the API; returns the name the API server gave it. */
export async function createPod(
  client: { request<T>(m: "POST", path: string, body: unknown): Promise<T> },
  pod: Pod,
): Promise<string> {
  const ns = pod.metadata.namespace ?? "default";
  const made = await client.request<Pod>("POST", `/api/v1/namespaces/${ns}/pods`, pod);
  return made.metadata.name;
}

/** A controller's delete: graceful, guarded by the uid it decided on. */
export function deletePodRequest(pod: Pod): [path: string, body: unknown] {
  return [
    podPath(pod.metadata.namespace ?? "default", pod.metadata.name),
    { preconditions: { uid: pod.metadata.uid } },
  ];
}

// k8s.io/apimachinery/pkg/util/rand SafeEncodeString: no vowels (no words) and no 0/1/3 (look-alikes).
const SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** k8s' ComputeHash: fnv-32a over the template (and the collision count), safe-encoded. */
export function templateHash(template: unknown, collisionCount = 0): string {
  let h = 0x811c9dc5;
  const text = `${canonicalJson(template)}${collisionCount ? String(collisionCount) : ""}`;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return [...String(h)].map((c) => SAFE_ALPHABET[c.charCodeAt(0) % SAFE_ALPHABET.length]).join("");
}

/** JSON with sorted keys, so equal templates hash equal whatever order a client wrote them in. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      // null is absent, as a Go client decodes it (kubectl sends template metadata.creationTimestamp: null).
      .filter(([, x]) => x !== undefined && x !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Same template, ignoring the controller's own hash label. */
export function sameTemplate(
  a: PodTemplate | undefined,
  b: PodTemplate | undefined,
  hashLabel: string,
): boolean {
  const strip = (t: PodTemplate | undefined) => {
    const labels = { ...t?.metadata?.labels };
    delete labels[hashLabel];
    return { ...t, metadata: { ...t?.metadata, labels } };
  };
  return canonicalJson(strip(a)) === canonicalJson(strip(b));
}

/**
 * An IntOrString against `total` (intstr.GetScaledValueFromIntOrPercent): an int as is, "25%"
 * rounded up or down as the caller says; anything else is an error naming `field`.
 */
export function scaledValue(value: unknown, total: number, roundUp: boolean, field: string): number {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string") {
    const m = /^(\d+)%$/.exec(value);
    if (m) {
      const exact = (Number(m[1]) * total) / 100;
      return roundUp ? Math.ceil(exact) : Math.floor(exact);
    }
    if (/^\d+$/.test(value)) return Number(value);
  }
  throw new AmbientError(
    ErrorCode.OBJECT_INVALID,
    `${field}: invalid value ${JSON.stringify(value)}: an integer or a percentage ("25%")`,
    { details: { field } },
  );
}
