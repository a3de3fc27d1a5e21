// What kube-controller-manager's garbage collector and namespace controller do after a delete:
// dependents whose every owner is gone are deleted (background propagation, cascading), a
// dependent with another live owner only loses the dangling reference, Orphan strips the
// references instead, and a deleted Namespace takes its objects with it.

import { hasCode } from "@ambient/core";
import { ApiErrorCode, badRequest } from "./errors.js";
import type { ObjectService } from "./objects.js";
import { type ResourceType, storageKey } from "./resources.js";
import type { KubeObject } from "./store.js";

/** What kube-apiserver adds to an owner deleted with propagationPolicy=Foreground. */
const FOREGROUND_FINALIZER = "foregroundDeletion";

export type PropagationPolicy = "Background" | "Foreground" | "Orphan";

export function parsePropagationPolicy(value: unknown): PropagationPolicy {
  if (value === undefined || value === null || value === "") return "Background";
  if (value === "Background" || value === "Foreground" || value === "Orphan") return value;
  throw badRequest(
    `propagationPolicy: Unsupported value: "${String(value)}": supported values: "Background", "Foreground", "Orphan"`,
  );
}

export class GarbageCollector {
  constructor(private readonly objects: ObjectService) {
    objects.onRemoved = (type, obj) => this.removed(type, obj);
  }

  /** Orphan: dependents keep living without the reference to `owner`. */
  orphanDependents(owner: KubeObject): void {
    for (const [type, dep] of this.dependentsOf(owner.metadata.uid!)) {
      const refs = (dep.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      const patch = { metadata: { ownerReferences: refs.length > 0 ? refs : null } };
      this.objects.patch(type, dep.metadata.namespace, dep.metadata.name!, "merge", patch);
    }
  }

  /**
   * Foreground: the owner gets deletionTimestamp and the `foregroundDeletion` finalizer and stays
   * (visible to `kubectl get`) until its dependents are gone, which are deleted the same way; the
   * last one's removal releases it (see `releaseOwners`).
   */
  deleteForeground(type: ResourceType, ns: string | undefined, name: string): KubeObject {
    const owner = this.objects.get(type, ns, name);
    const deps = this.dependentsOf(owner.metadata.uid!);
    if (deps.length === 0) return this.objects.delete(type, ns, name);
    const finalizers = owner.metadata.finalizers ?? [];
    if (!finalizers.includes(FOREGROUND_FINALIZER)) {
      this.objects.patch(type, ns, name, "merge", {
        metadata: { finalizers: [...finalizers, FOREGROUND_FINALIZER] },
      });
    }
    const held = this.objects.delete(type, ns, name);
    for (const [depType, dep] of deps) {
      try {
        this.deleteForeground(depType, dep.metadata.namespace, dep.metadata.name!);
      } catch (err) {
        if (!hasCode(err, ApiErrorCode.NOT_FOUND)) throw err;
      }
    }
    return this.objects.store.get(storageKey(type), owner.metadata.namespace, name) ? held : owner;
  }

  /** A dependent is gone: an owner waiting in foreground deletion for its last one goes now. */
  private releaseOwners(obj: KubeObject): void {
    for (const ref of obj.metadata.ownerReferences ?? []) {
      const found = this.findByUid(ref.uid);
      if (!found) continue;
      const [type, owner] = found;
      const finalizers = owner.metadata.finalizers ?? [];
      if (!owner.metadata.deletionTimestamp || !finalizers.includes(FOREGROUND_FINALIZER)) continue;
      if (this.dependentsOf(ref.uid).length > 0) continue;
      this.objects.patch(type, owner.metadata.namespace, owner.metadata.name!, "merge", {
        metadata: { finalizers: finalizers.filter((f) => f !== FOREGROUND_FINALIZER) },
      });
    }
  }

  private removed(type: ResourceType, obj: KubeObject): void {
    this.releaseOwners(obj);
    if (type.kind === "Namespace") this.emptyNamespace(obj.metadata.name!);
    if (type.kind === "CustomResourceDefinition") this.dropCustomObjects(obj);
    for (const [depType, dep] of this.dependentsOf(obj.metadata.uid!)) {
      const alive = (dep.metadata.ownerReferences ?? []).filter(
        (r) => r.uid !== obj.metadata.uid && this.exists(r.uid),
      );
      if (alive.length > 0) {
        const refs = (dep.metadata.ownerReferences ?? []).filter((r) => r.uid !== obj.metadata.uid);
        this.objects.patch(depType, dep.metadata.namespace, dep.metadata.name!, "merge", {
          metadata: { ownerReferences: refs },
        });
      } else this.deleteQuietly(depType, dep);
    }
  }

  private emptyNamespace(ns: string): void {
    for (const type of this.storageTypes()) {
      if (!type.namespaced) continue;
      for (const obj of this.objects.store.list(storageKey(type), ns)) this.deleteQuietly(type, obj, true);
    }
  }

  private dropCustomObjects(crd: KubeObject): void {
    const spec = crd.spec as { group?: string; names?: { plural?: string } };
    const storage = `${spec.group}/${spec.names?.plural}`;
    for (const obj of this.objects.store.list(storage)) {
      this.objects.store.remove(storage, obj.metadata.namespace, obj.metadata.name!);
    }
  }

  /** The namespace controller and GC remove finalizer-free objects; finalizers still hold them. */
  private deleteQuietly(type: ResourceType, obj: KubeObject, force = false): void {
    try {
      this.objects.delete(type, obj.metadata.namespace, obj.metadata.name!);
      if (force && this.objects.store.get(storageKey(type), obj.metadata.namespace, obj.metadata.name!)) {
        // Namespace deletion does not wait for finalizers here (see README): the namespace goes now.
        this.objects.store.remove(storageKey(type), obj.metadata.namespace, obj.metadata.name!);
      }
    } catch (err) {
      // Already gone through another owner's cascade: nothing left to do.
      if (!hasCode(err, ApiErrorCode.NOT_FOUND)) throw err;
    }
  }

  private dependentsOf(uid: string): [ResourceType, KubeObject][] {
    const out: [ResourceType, KubeObject][] = [];
    for (const type of this.storageTypes()) {
      for (const obj of this.objects.store.list(storageKey(type))) {
        if ((obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid)) out.push([type, obj]);
      }
    }
    return out;
  }

  private findByUid(uid: string): [ResourceType, KubeObject] | undefined {
    for (const t of this.storageTypes()) {
      const obj = this.objects.store.scan(storageKey(t)).find((o) => o.metadata.uid === uid);
      if (obj) return [t, structuredClone(obj) as KubeObject];
    }
    return undefined;
  }

  private exists(uid: string): boolean {
    return this.storageTypes().some((t) =>
      this.objects.store.list(storageKey(t)).some((o) => o.metadata.uid === uid),
    );
  }

  /** One type per stored kind (custom kinds may be served at several versions). */
  private storageTypes(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.objects.registry.all()) if (!seen.has(storageKey(t))) seen.set(storageKey(t), t);
    return [...seen.values()];
  }
}
