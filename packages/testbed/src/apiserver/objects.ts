// The registry layer: create, read, replace, patch and delete with kube-apiserver's semantics on
// top of the store (preconditions, defaults, status subresources, generation, managedFields,
// finalizers, no-op writes that keep the resourceVersion). Cascades live in gc.ts.

import { randomUUID } from "node:crypto";
import { serverSideApply, trackUpdate } from "./apply.js";
import { crdTypes, establishedStatus, validateCrd } from "./crds.js";
import {
  bumpGeneration,
  ClusterIpAllocator,
  checkBody,
  defaultOnCreate,
  keepOnUpdate,
  validateName,
} from "./defaults.js";
import { ApiErrorCode, apiError, badRequest, notFound } from "./errors.js";
import { keyFnFor, sameJson } from "./fields.js";
import { applyPatch, type PatchKind } from "./patch.js";
import {
  BUILTIN_TYPES,
  groupVersion,
  type ResourceRegistry,
  type ResourceType,
  storageKey,
} from "./resources.js";
import type { KubeObject, ObjectStore } from "./store.js";

export interface WriteOptions {
  /** managedFields manager; kube-apiserver defaults it from the User-Agent's product token. */
  fieldManager?: string;
  subresource?: "status";
  force?: boolean;
}

export function isBuiltin(type: ResourceType): boolean {
  return type.crd === undefined && BUILTIN_TYPES.includes(type);
}

/** RFC 3339 with seconds, as Kubernetes timestamps are. */
export function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Pods' spec.terminationGracePeriodSeconds default. */
const DEFAULT_POD_GRACE_SECONDS = 30;

export class ObjectService {
  readonly clusterIps = new ClusterIpAllocator();
  /** Called after an object is removed from storage (garbage collection hooks in). */
  onRemoved: (type: ResourceType, obj: KubeObject) => void = () => {};

  constructor(
    readonly store: ObjectStore,
    readonly registry: ResourceRegistry,
  ) {}

  get(type: ResourceType, ns: string | undefined, name: string): KubeObject {
    const obj = this.store.get(storageKey(type), type.namespaced ? ns : undefined, name);
    if (!obj) throw notFound(type.resource, type.group, name);
    return this.atVersion(type, obj);
  }

  /** Objects read at the version asked for (custom resources are stored once for all versions). */
  atVersion(type: ResourceType, obj: KubeObject): KubeObject {
    obj.apiVersion = groupVersion(type);
    obj.kind = type.kind;
    return obj;
  }

  create(type: ResourceType, ns: string | undefined, body: unknown, opts: WriteOptions = {}): KubeObject {
    const obj = checkBody(type, ns, body);
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = `${obj.metadata.generateName}${randomUUID().replace(/-/g, "").slice(0, 5)}`;
    }
    const name = obj.metadata.name;
    if (!name) {
      throw apiError(
        ApiErrorCode.INVALID,
        `${type.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
        {
          kind: type.kind,
          causes: [
            {
              reason: "FieldValueRequired",
              field: "metadata.name",
              message: "Required value: name or generateName is required",
            },
          ],
        },
      );
    }
    validateName(type, name);
    if (type.namespaced) this.requireNamespace(obj.metadata.namespace!);
    if (this.store.get(storageKey(type), obj.metadata.namespace, name)) {
      throw apiError(
        ApiErrorCode.ALREADY_EXISTS,
        `${type.resource}${type.group ? `.${type.group}` : ""} "${name}" already exists`,
        {
          kind: type.resource,
          group: type.group,
          name,
        },
      );
    }
    if (type.kind === "CustomResourceDefinition") validateCrd(obj);
    delete obj.metadata.resourceVersion;
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = now();
    obj.metadata.generation = 1;
    defaultOnCreate(type, obj, this.clusterIps);
    if (type.kind === "CustomResourceDefinition") obj.status = establishedStatus(obj, now());
    const manager = opts.fieldManager;
    if (manager) {
      obj.metadata.managedFields = trackUpdate({
        before: undefined,
        after: obj,
        manager,
        keyFn: keyFnFor(isBuiltin(type)),
        now: now(),
      });
    }
    const stored = this.store.put(storageKey(type), obj, "ADDED");
    if (type.kind === "CustomResourceDefinition") this.registry.setCrdTypes(name, crdTypes(stored));
    return this.atVersion(type, stored);
  }

  /** PUT: the whole object, optionally guarded by metadata.resourceVersion. */
  replace(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions = {},
  ): KubeObject {
    const after = checkBody(type, ns, body);
    if (after.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${after.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const before = this.get(type, ns, name);
    const rv = after.metadata.resourceVersion;
    if (rv && rv !== before.metadata.resourceVersion) throw this.conflict(type, name);
    after.metadata.managedFields = before.metadata.managedFields;
    return this.write(type, before, after, opts);
  }

  patch(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    kind: PatchKind,
    patch: unknown,
    opts: WriteOptions = {},
  ): KubeObject {
    if (kind === "apply") return this.apply(type, ns, name, patch, opts);
    const before = this.get(type, ns, name);
    const after = applyPatch(kind, before, patch) as KubeObject;
    if (typeof after !== "object" || after === null || typeof after.metadata !== "object") {
      throw badRequest("the patch left no object with metadata");
    }
    const rv = after.metadata.resourceVersion;
    if (rv && rv !== before.metadata.resourceVersion) throw this.conflict(type, name);
    if (after.metadata.name !== name)
      throw badRequest(`metadata.name: the patch may not change the name (${name})`);
    return this.write(type, before, after, opts);
  }

  private apply(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions,
  ): KubeObject {
    if (!opts.fieldManager) {
      throw apiError(
        ApiErrorCode.INVALID,
        `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`,
      );
    }
    const applied = checkBody(type, ns, body);
    if (applied.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    // The main resource of a kind with a status subresource ignores status, and /status the rest.
    if (type.status && opts.subresource !== "status") delete applied.status;
    const live = this.store.get(storageKey(type), applied.metadata.namespace, name);
    const merged = serverSideApply({
      live,
      applied,
      manager: opts.fieldManager,
      force: opts.force === true,
      keyFn: keyFnFor(isBuiltin(type)),
      now: now(),
      ...(opts.subresource ? { subresource: opts.subresource } : {}),
    });
    merged.apiVersion = applied.apiVersion;
    merged.kind = applied.kind;
    merged.metadata.name = name;
    if (!live) return this.create(type, ns, merged, {});
    return this.write(type, this.atVersion(type, live), merged, { ...opts, fieldManager: undefined });
  }

  /** The common tail of PUT and PATCH: subresource rules, kept fields, no-op detection, finalizers. */
  private write(type: ResourceType, before: KubeObject, after: KubeObject, opts: WriteOptions): KubeObject {
    if (opts.subresource === "status") {
      // Pods keep metadata edits made through /status (istio-cni annotates pods that way);
      // custom resources take only the status stanza.
      // Their managedFields are the write's own, though: an apply through /status owns what it set.
      if (type.crd) {
        const managedFields = after.metadata.managedFields;
        Object.assign(after, { ...before, status: after.status });
        after.metadata = { ...before.metadata, managedFields };
      } else after.spec = before.spec;
    } else if (type.status) after.status = before.status;
    keepOnUpdate(type, before, after);
    bumpGeneration(before, after);
    if (opts.fieldManager) {
      after.metadata.managedFields = trackUpdate({
        before,
        after,
        manager: opts.fieldManager,
        keyFn: keyFnFor(isBuiltin(type)),
        now: now(),
        ...(opts.subresource ? { subresource: opts.subresource } : {}),
      });
    }
    if (type.kind === "CustomResourceDefinition") {
      validateCrd(after);
      after.status = { ...establishedStatus(after, now()), ...(before.status as object) };
    }
    const strip = (o: KubeObject) => ({
      ...o,
      metadata: { ...o.metadata, resourceVersion: undefined, managedFields: undefined },
    });
    const unchanged = sameJson(strip(before), strip(after));
    // A no-op write is not a write: same resourceVersion, no event (kubectl apply relies on it).
    if (unchanged && sameJson(before.metadata.managedFields, after.metadata.managedFields)) return before;
    // A pod in its grace period stays until its kubelet deletes it again with grace 0.
    const terminating = type.kind === "Pod" && (after.metadata.deletionGracePeriodSeconds ?? 0) > 0;
    if (after.metadata.deletionTimestamp && !terminating && (after.metadata.finalizers ?? []).length === 0) {
      return this.removeNow(type, after);
    }
    const stored = this.store.put(storageKey(type), after, "MODIFIED");
    if (type.kind === "CustomResourceDefinition")
      this.registry.setCrdTypes(stored.metadata.name!, crdTypes(stored));
    return this.atVersion(type, stored);
  }

  /**
   * DELETE: a pod bound to a node is deleted gracefully (see `graceful`); finalizers hold the
   * object (deletionTimestamp set); otherwise it goes now.
   */
  delete(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    preconditions: { uid?: string; resourceVersion?: string } = {},
    gracePeriodSeconds?: number,
  ): KubeObject {
    const obj = this.get(type, ns, name);
    if (preconditions.uid && preconditions.uid !== obj.metadata.uid) {
      throw apiError(
        ApiErrorCode.CONFLICT,
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${obj.metadata.uid}`,
      );
    }
    if (preconditions.resourceVersion && preconditions.resourceVersion !== obj.metadata.resourceVersion) {
      throw this.conflict(type, name);
    }
    if (type.kind === "Pod") {
      const held = this.graceful(type, obj, gracePeriodSeconds);
      if (held) return held;
    }
    if ((obj.metadata.finalizers ?? []).length > 0) {
      if (obj.metadata.deletionTimestamp) return obj;
      obj.metadata.deletionTimestamp = now();
      obj.metadata.deletionGracePeriodSeconds = 0;
      return this.atVersion(type, this.store.put(storageKey(type), obj, "MODIFIED"));
    }
    return this.removeNow(type, obj);
  }

  /**
   * kube-apiserver's pod strategy: a pod bound to a node and not finished gets deletionTimestamp =
   * now + grace (the request's, else spec.terminationGracePeriodSeconds) and stays for its kubelet
   * to stop it and delete it with grace 0; a later request may only shorten the grace. Grace 0
   * (`kubectl delete --force --grace-period=0`, the kubelet's final delete) removes it now.
   * Returns the held pod, or undefined when it goes now.
   */
  private graceful(
    type: ResourceType,
    pod: KubeObject,
    requested: number | undefined,
  ): KubeObject | undefined {
    const spec = (pod.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    if (!spec.nodeName || phase === "Succeeded" || phase === "Failed") return undefined;
    const grace = Math.max(0, requested ?? spec.terminationGracePeriodSeconds ?? DEFAULT_POD_GRACE_SECONDS);
    if (grace === 0) return undefined;
    const current = pod.metadata.deletionGracePeriodSeconds;
    if (pod.metadata.deletionTimestamp && current !== undefined && current <= grace) return pod;
    pod.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
    pod.metadata.deletionGracePeriodSeconds = grace;
    return this.atVersion(type, this.store.put(storageKey(type), pod, "MODIFIED"));
  }

  private removeNow(type: ResourceType, obj: KubeObject): KubeObject {
    const gone = this.store.remove(storageKey(type), obj.metadata.namespace, obj.metadata.name!);
    if (!gone) return obj;
    if (type.kind === "Service")
      this.clusterIps.release((gone.spec as { clusterIP?: string } | undefined)?.clusterIP);
    if (type.kind === "CustomResourceDefinition") this.registry.setCrdTypes(gone.metadata.name!, []);
    this.onRemoved(type, gone);
    return this.atVersion(type, gone);
  }

  private requireNamespace(ns: string): void {
    const namespace = this.store.get("/namespaces", undefined, ns);
    if (!namespace) throw notFound("namespaces", "", ns);
  }

  private conflict(type: ResourceType, name: string): Error {
    const what = `${type.resource}${type.group ? `.${type.group}` : ""}`;
    return apiError(
      ApiErrorCode.CONFLICT,
      `Operation cannot be fulfilled on ${what} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { kind: type.resource, group: type.group, name },
    );
  }
}
