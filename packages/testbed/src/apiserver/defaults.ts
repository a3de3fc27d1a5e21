// What kube-apiserver's strategies and the always-on controllers do to an object on its way in:
// names validated, status reset on create for kinds with a status subresource, the defaults our
// components and kubectl's tables read (Pod phase and service account, Service cluster IP), and
// the objects a new Namespace gets (the `default` ServiceAccount and `kube-root-ca.crt`).

import { badRequest, invalid } from "./errors.js";
import { sameJson } from "./fields.js";
import { groupVersion, type ResourceType } from "./resources.js";
import type { KubeObject } from "./store.js";

// RFC 1123 subdomain (most kinds) and label (Namespaces, Services): kube-apiserver's name rules.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateName(type: ResourceType, name: string): void {
  const label = type.kind === "Namespace" || type.kind === "Service";
  const ok = label
    ? DNS_LABEL.test(name) && name.length <= 63
    : DNS_SUBDOMAIN.test(name) && name.length <= 253;
  // Events are named `<object>.<hex>` and CRDs `<plural>.<group>`, both subdomains.
  if (!ok) {
    const rule = label ? "a lowercase RFC 1123 label" : "a lowercase RFC 1123 subdomain";
    throw invalid(type.kind, name, [
      { field: "metadata.name", message: `Invalid value: "${name}": must be ${rule}` },
    ]);
  }
}

/** Allocates Service cluster IPs from 10.96.0.0/12 as a fresh cluster does; .1 is `kubernetes`. */
export class ClusterIpAllocator {
  private next = 1;
  private readonly used = new Set<string>();

  reserve(ip: string): void {
    this.used.add(ip);
  }

  allocate(): string {
    for (;;) {
      const n = this.next++;
      const ip = `10.96.${(n >> 8) & 0xff}.${n & 0xff}`;
      if (!this.used.has(ip)) {
        this.used.add(ip);
        return ip;
      }
    }
  }

  release(ip: string | undefined): void {
    if (ip) this.used.delete(ip);
  }
}

/** Defaults on create (PrepareForCreate + defaulting funcs), for the fields clients rely on. */
export function defaultOnCreate(type: ResourceType, obj: KubeObject, ips: ClusterIpAllocator): void {
  obj.spec ??= {};
  const spec = obj.spec as Record<string, unknown>;
  switch (type.kind) {
    case "Namespace":
      obj.metadata.labels = { ...obj.metadata.labels, "kubernetes.io/metadata.name": obj.metadata.name! };
      spec.finalizers ??= ["kubernetes"];
      obj.status = { phase: "Active" };
      break;
    case "Pod": {
      obj.status = { phase: "Pending", qosClass: "BestEffort" };
      // The ServiceAccount admission plugin: no account named means `default`.
      spec.serviceAccountName ??= spec.serviceAccount ?? "default";
      spec.serviceAccount = spec.serviceAccountName;
      spec.restartPolicy ??= "Always";
      spec.dnsPolicy ??= "ClusterFirst";
      spec.schedulerName ??= "default-scheduler";
      spec.terminationGracePeriodSeconds ??= 30;
      defaultContainers(spec);
      break;
    }
    case "Service": {
      obj.status = { loadBalancer: {} };
      spec.type ??= "ClusterIP";
      spec.sessionAffinity ??= "None";
      if (spec.type !== "ExternalName") {
        if (spec.clusterIP === undefined || spec.clusterIP === "") spec.clusterIP = ips.allocate();
        else if (spec.clusterIP !== "None") ips.reserve(String(spec.clusterIP));
        spec.clusterIPs ??= [spec.clusterIP];
        spec.ipFamilies ??= ["IPv4"];
        spec.ipFamilyPolicy ??= "SingleStack";
      }
      for (const p of (spec.ports ?? []) as Record<string, unknown>[]) {
        p.protocol ??= "TCP";
        p.targetPort ??= p.port;
      }
      break;
    }
    case "Deployment":
      spec.replicas ??= 1;
      // apps/v1 SetDefaults_Deployment.
      spec.strategy ??= { type: "RollingUpdate" };
      if ((spec.strategy as { type?: string }).type === "RollingUpdate")
        (spec.strategy as Record<string, unknown>).rollingUpdate ??= {
          maxSurge: "25%",
          maxUnavailable: "25%",
        };
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      obj.status = {};
      defaultContainers(
        ((spec.template as Record<string, unknown> | undefined)?.spec ?? {}) as Record<string, unknown>,
      );
      break;
    case "ReplicaSet":
      spec.replicas ??= 1;
      obj.status = { replicas: 0 };
      defaultContainers(
        ((spec.template as Record<string, unknown> | undefined)?.spec ?? {}) as Record<string, unknown>,
      );
      break;
    case "DaemonSet":
      // The registry's PrepareForCreate: the template generation the DaemonSet controller labels pods with.
      obj.metadata.annotations = { ...obj.metadata.annotations, [DS_TEMPLATE_GENERATION]: "1" };
      // apps/v1 SetDefaults_DaemonSet.
      spec.updateStrategy ??= { type: "RollingUpdate" };
      if ((spec.updateStrategy as { type?: string }).type === "RollingUpdate")
        (spec.updateStrategy as Record<string, unknown>).rollingUpdate ??= { maxUnavailable: 1, maxSurge: 0 };
      spec.revisionHistoryLimit ??= 10;
      obj.status = {};
      defaultContainers(
        ((spec.template as Record<string, unknown> | undefined)?.spec ?? {}) as Record<string, unknown>,
      );
      break;
    default:
      if (Object.keys(spec).length === 0) delete obj.spec;
      if (type.status && type.kind !== "Node") delete obj.status;
  }
}

function defaultContainers(podSpec: Record<string, unknown>): void {
  for (const c of (podSpec.containers ?? []) as Record<string, unknown>[]) {
    for (const p of (c.ports ?? []) as Record<string, unknown>[]) p.protocol ??= "TCP";
  }
}

/** apps/v1 DaemonSets carry their template generation in this annotation (kube-apiserver sets it). */
export const DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation";

/** Updates keep what the client may not change: identity, creation time, and immutable fields. */
export function keepOnUpdate(type: ResourceType, before: KubeObject, after: KubeObject): void {
  after.metadata.uid = before.metadata.uid;
  after.metadata.creationTimestamp = before.metadata.creationTimestamp;
  after.metadata.namespace = before.metadata.namespace;
  if (before.metadata.deletionTimestamp) after.metadata.deletionTimestamp = before.metadata.deletionTimestamp;
  if (before.metadata.deletionGracePeriodSeconds !== undefined)
    after.metadata.deletionGracePeriodSeconds = before.metadata.deletionGracePeriodSeconds;
  if (type.kind === "DaemonSet") keepTemplateGeneration(before, after);
  if (type.kind === "Service") {
    const b = (before.spec ?? {}) as Record<string, unknown>;
    after.spec ??= {};
    const a = after.spec as Record<string, unknown>;
    // A Service keeps its cluster IP when a client (kubectl apply, helm) sends none.
    if (b.clusterIP && (a.clusterIP === undefined || a.clusterIP === "")) {
      a.clusterIP = b.clusterIP;
      a.clusterIPs = b.clusterIPs;
    }
  }
}

/** The DaemonSet registry's PrepareForUpdate: the template generation moves with the template only. */
function keepTemplateGeneration(before: KubeObject, after: KubeObject): void {
  const was = Number(
    before.metadata.annotations?.[DS_TEMPLATE_GENERATION] ?? before.metadata.generation ?? 1,
  );
  const template = (o: KubeObject) => (o.spec as { template?: unknown } | undefined)?.template;
  const next = sameJson(template(before), template(after)) ? was : was + 1;
  after.metadata.annotations = { ...after.metadata.annotations, [DS_TEMPLATE_GENERATION]: String(next) };
}

/** metadata.generation moves when anything but metadata and status changes. */
export function bumpGeneration(before: KubeObject, after: KubeObject): void {
  const strip = (o: KubeObject) => ({ ...o, metadata: undefined, status: undefined });
  const gen = before.metadata.generation ?? 1;
  after.metadata.generation = sameJson(strip(before), strip(after)) ? gen : gen + 1;
}

/** The body of a create, replace or apply: an object of this kind, in this namespace. */
export function checkBody(type: ResourceType, ns: string | undefined, body: unknown): KubeObject {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest(`the request body must be a ${type.kind} object`);
  }
  const obj = structuredClone(body) as KubeObject;
  obj.metadata ??= {};
  obj.apiVersion ??= groupVersion(type);
  obj.kind ??= type.kind;
  if (obj.apiVersion !== groupVersion(type) && !(type.crd && obj.apiVersion.startsWith(`${type.group}/`))) {
    throw badRequest(
      `the API version in the data (${obj.apiVersion}) does not match the expected API version (${groupVersion(type)})`,
    );
  }
  if (obj.kind !== type.kind) {
    throw badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${type.kind})`);
  }
  if (type.namespaced) {
    if (obj.metadata.namespace && obj.metadata.namespace !== ns) {
      throw badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    obj.metadata.namespace = ns;
  } else delete obj.metadata.namespace;
  return obj;
}
