// Writes the conditions of conditions.ts where kubectl shows them: a server-side apply to each
// object's status subresource with our own field manager, only when our conditions differ from what
// the object holds (our write's own watch event then finds nothing to do: no write loop). Applying
// no conditions drops the ones we owned. Serialized; a failed write is retried after a backoff.

import { Backoff, errorMessage, type Logger } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { apiStatusOf, type KubeConfig, type ResourceRef, serverSideApply } from "@ambient/kube/api";
import {
  type Condition,
  isRouteObject,
  ownedIn,
  ownedParentsIn,
  type RouteParent,
  type StatusTarget,
} from "./conditions.js";

/** Ours alone: the API server drops conditions this manager applied and no longer applies. */
const FIELD_MANAGER = "ambient.istio.io/status";

const RESOURCES: Record<string, ResourceRef> = {
  Service: { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true },
  ServiceEntry: {
    group: "networking.istio.io",
    version: "v1",
    plural: "serviceentries",
    kind: "ServiceEntry",
    namespaced: true,
  },
  AuthorizationPolicy: {
    group: "security.istio.io",
    version: "v1",
    plural: "authorizationpolicies",
    kind: "AuthorizationPolicy",
    namespaced: true,
  },
  HTTPRoute: {
    group: "gateway.networking.k8s.io",
    version: "v1",
    plural: "httproutes",
    kind: "HTTPRoute",
    namespaced: true,
  },
  GRPCRoute: {
    group: "gateway.networking.k8s.io",
    version: "v1",
    plural: "grpcroutes",
    kind: "GRPCRoute",
    namespaced: true,
  },
  TLSRoute: {
    group: "gateway.networking.k8s.io",
    version: "v1alpha2",
    plural: "tlsroutes",
    kind: "TLSRoute",
    namespaced: true,
  },
  TCPRoute: {
    group: "gateway.networking.k8s.io",
    version: "v1alpha2",
    plural: "tcproutes",
    kind: "TCPRoute",
    namespaced: true,
  },
};

export interface StatusWriterOptions {
  kc: KubeConfig;
  logger: Logger;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Tests: the clock conditions are stamped with. */
  now?: () => Date;
}

interface Pending {
  target: StatusTarget;
  /** The resourceVersion the decision was made on: a write for it is not repeated. */
  resourceVersion: string | undefined;
}

export class StatusWriter {
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly pending = new Map<string, Pending>();
  /** key → `resourceVersion|conditions` last written, until the object moves on. */
  private readonly written = new Map<string, string>();
  /**
   * key → the target last found to hold our conditions already. The tracker hands back the same
   * target object while nothing it reads changed, so the same target is settled again without
   * comparing conditions: an edit that touched no Service or policy costs a lookup per target.
   */
  private readonly settled = new Map<string, StatusTarget>();
  private draining: Promise<void> | undefined;
  private running = false;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: StatusWriterOptions) {
    this.log = o.logger.child({ component: "status-writer" });
    this.backoff = new Backoff(o.backoff?.initialMs ?? 500, o.backoff?.maxMs ?? 30_000);
  }

  /** After each translation: queues the objects whose conditions of ours differ from what they hold. */
  update(targets: readonly StatusTarget[]): void {
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const target of targets) {
      const key = keyOf(target.object);
      seen.add(key);
      if (this.settled.get(key) === target) continue;
      const wanted = wantedFingerprint(target);
      if (heldFingerprint(target.object) === wanted) {
        this.pending.delete(key);
        this.written.delete(key);
        this.settled.set(key, target);
        continue;
      }
      this.settled.delete(key);
      const rv = target.object.metadata.resourceVersion as string | undefined;
      if (this.written.get(key) === `${rv}|${wanted}`) continue;
      this.pending.set(key, { target, resourceVersion: rv });
    }
    for (const key of this.pending.keys()) if (!seen.has(key)) this.pending.delete(key);
    for (const key of this.written.keys()) if (!seen.has(key)) this.written.delete(key);
    for (const key of this.settled.keys()) if (!seen.has(key)) this.settled.delete(key);
    this.kick();
  }

  private kick(): void {
    // While a retry waits, later translations queue their writes behind it, not around the backoff.
    if (this.running || this.retry || this.stopped || this.pending.size === 0) return;
    this.draining = this.drain();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.draining;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const [key, next] = this.pending.entries().next().value as [string, Pending];
        this.pending.delete(key);
        // Marked before the write: a translation that arrives while it is in flight, still on the
        // same resourceVersion, must not queue the same write again.
        const mark = `${next.resourceVersion}|${wantedFingerprint(next.target)}`;
        this.written.set(key, mark);
        try {
          await this.write(next.target);
          this.backoff.reset();
        } catch (err) {
          if (this.written.get(key) === mark) this.written.delete(key);
          // Deleted meanwhile: the next translation no longer has it.
          if (apiStatusOf(err) === 404) continue;
          if (!this.pending.has(key)) this.pending.set(key, next);
          const delay = this.backoff.next();
          this.log.warn({ object: key, retryInMs: delay }, `cannot write status: ${errorMessage(err)}`);
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.kick();
          }, delay);
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async write(target: StatusTarget): Promise<void> {
    const { object, conditions } = target;
    const now = (this.o.now?.() ?? new Date()).toISOString().replace(/\.\d+Z$/, "Z");
    const generation = object.metadata.generation as number | undefined;
    const stamp = (list: Condition[], before: Condition[]) =>
      list.map((c) => {
        const prev = before.find((p) => p.type === c.type) as
          | (Condition & { lastTransitionTime?: string })
          | undefined;
        return {
          ...c,
          ...(generation !== undefined ? { observedGeneration: generation } : {}),
          // Kubernetes' convention: the time the status last flipped, not the time we last wrote.
          lastTransitionTime:
            prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
        };
      });
    let status: object;
    if (isRouteObject(object)) {
      // A route's status is per parent: each entry with its parentRef, our controllerName and
      // its own conditions (Gateway API RouteParentStatus).
      const held = ownedParentsIn(object);
      const parents = (target.parents ?? []).map((p) => ({
        ...p,
        conditions: stamp(
          p.conditions,
          held.find((h) => sameRef(h.parentRef, p.parentRef))?.conditions ?? [],
        ),
      }));
      // status.parents is an atomic list in the CRD: an apply replaces it whole, so the entries
      // of other controllers (an ingress Gateway's) are applied back as the object holds them.
      const others = (
        ((object.status as { parents?: unknown[] } | undefined)?.parents ?? []) as RouteParent[]
      ).filter((p) => p?.controllerName !== undefined && !held.includes(p));
      const all = [...others, ...parents];
      status = all.length > 0 ? { parents: all } : {};
    } else {
      const stamped = stamp(conditions, ownedIn(object));
      status = stamped.length > 0 ? { conditions: stamped } : {};
    }
    // The version the object was read at: an apply's body and path must agree on it.
    const resource = { ...RESOURCES[object.kind]!, version: object.apiVersion.split("/").pop()! };
    await serverSideApply(
      this.o.kc,
      resource,
      {
        apiVersion: object.apiVersion,
        kind: object.kind,
        metadata: { name: object.metadata.name, namespace: object.metadata.namespace ?? "default" },
        ...({ status } as object),
      } as never,
      { fieldManager: FIELD_MANAGER, force: true, subresource: "status" },
    );
    const written = [...conditions, ...(target.parents ?? []).flatMap((p) => p.conditions)];
    this.log.info(
      { object: keyOf(object), conditions: written.map((c) => `${c.type}=${c.status} ${c.reason}`) },
      written.length > 0 ? "status written" : "status conditions removed",
    );
  }
}

function keyOf(o: KubeObject): string {
  return `${o.kind}/${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
}

/** What we want on the object, in the form heldFingerprint reads it back. */
function wantedFingerprint(target: StatusTarget): string {
  if (!isRouteObject(target.object)) return fingerprint(target.conditions);
  return parentsFingerprint(target.parents ?? []);
}

/** What of ours the object holds now. */
function heldFingerprint(object: KubeObject): string {
  if (!isRouteObject(object)) return fingerprint(ownedIn(object));
  return parentsFingerprint(ownedParentsIn(object));
}

function parentsFingerprint(parents: readonly RouteParent[]): string {
  return JSON.stringify(parents.map((p) => [refKey(p.parentRef), fingerprint(p.conditions)]));
}

function refKey(ref: RouteParent["parentRef"]): string {
  return [
    ref.group ?? "gateway.networking.k8s.io",
    ref.kind ?? "Gateway",
    ref.namespace ?? "",
    ref.name,
    ref.sectionName ?? "",
    ref.port ?? "",
  ].join("|");
}

function sameRef(a: RouteParent["parentRef"], b: RouteParent["parentRef"]): boolean {
  return refKey(a) === refKey(b);
}

/** What a condition says, times and generations aside, in type order. */
function fingerprint(conditions: readonly Condition[]): string {
  return JSON.stringify(
    [...conditions]
      .map((c) => [c.type, c.status, c.reason, c.message])
      .sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
  );
}
