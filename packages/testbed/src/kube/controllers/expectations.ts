// kube-controller-manager's "expectations": after a controller creates or deletes pods it waits
// until its cache has seen them before it counts again, or a sync running on a cache that lags
// its own writes creates a second set of pods.

import type { KubeObject } from "@ambient/kube";

/** The real controllers give up waiting after 5 minutes; a lost watch event here recovers sooner. */
const EXPECTATIONS_TTL_MS = 30_000;

interface Expected {
  adds: Set<string>;
  deletes: Set<string>;
  at: number;
}

export class Expectations {
  private readonly byOwner = new Map<string, Expected>();

  /** Pods named `name` were created for `owner`. */
  created(owner: string, name: string): void {
    this.entry(owner).adds.add(name);
  }

  /** The pod with uid `uid` was deleted for `owner`. */
  deleted(owner: string, uid: string): void {
    this.entry(owner).deletes.add(uid);
  }

  /** True once `pods` (the cache) shows every create and delete made for `owner`. */
  satisfied(owner: string, pods: readonly KubeObject[]): boolean {
    const e = this.byOwner.get(owner);
    if (!e) return true;
    if (Date.now() - e.at > EXPECTATIONS_TTL_MS) {
      this.byOwner.delete(owner);
      return true;
    }
    const names = new Set(pods.map((p) => p.metadata.name));
    const live = new Set(pods.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.uid));
    for (const n of e.adds) if (names.has(n)) e.adds.delete(n);
    for (const u of e.deletes) if (!live.has(u)) e.deletes.delete(u);
    if (e.adds.size > 0 || e.deletes.size > 0) return false;
    this.byOwner.delete(owner);
    return true;
  }

  forget(owner: string): void {
    this.byOwner.delete(owner);
  }

  private entry(owner: string): Expected {
    let e = this.byOwner.get(owner);
    if (!e) {
      e = { adds: new Set(), deletes: new Set(), at: Date.now() };
      this.byOwner.set(owner, e);
    }
    e.at = Date.now();
    return e;
  }
}
