// The waypoint controller (Kubernetes mode): every Gateway of class istio-waypoint (a waypoint) or
// istio (an ingress gateway) gets the ServiceAccount, Deployment and Service of desired.ts, written by server-side apply with one field
// manager (force, as Istio's controller does: these objects are ours) and owned by the Gateway, so
// deleting it deletes them. The Gateway's status follows its Service and Deployment (status.ts).
// Reflectors feed the state; one serialized queue of Gateway keys writes, with backoff on failure.

import { Backoff, errorMessage, findCode, type Logger } from "@ambient/core";
import type { Gateway, KubeObject, Service } from "@ambient/kube";
import {
  apiStatusOf,
  type KubeConfig,
  objectPath,
  Reflector,
  type ResourceRef,
  requestJson,
  serverSideApply,
} from "@ambient/kube/api";
import { isIngressGateway } from "../translate/ingress.js";
import { GATEWAY_MANAGED_LABEL, GATEWAY_NAME_LABEL, MESH_CONTROLLER } from "../translate/waypoints.js";
import {
  deployedName,
  GATEWAY_CLASS_LABEL,
  GATEWAY_CONTROLLER,
  gatewayClasses,
  gatewayObjects,
  isDeployedClass,
  type WaypointTemplateOptions,
} from "./desired.js";
import { FIELD_MANAGER, ManagedGatewayClass } from "./gateway-class.js";
import { gatewayStatus, statusChanged } from "./status.js";

export const GATEWAYS: ResourceRef = {
  group: "gateway.networking.k8s.io",
  version: "v1",
  plural: "gateways",
  kind: "Gateway",
  namespaced: true,
};
const MANAGED: Record<string, ResourceRef> = {
  ServiceAccount: {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
  },
  Deployment: { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true },
  Service: { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true },
};

export interface WaypointControllerOptions extends WaypointTemplateOptions {
  kc: KubeConfig;
  logger: Logger;
  /** Tests shorten the reflectors' watchdog and the backoffs. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

export class WaypointController {
  private readonly gateways = new Map<string, Gateway>();
  /** `Kind/ns/name` → the object as the API server last showed it. */
  private readonly managed = new Map<string, KubeObject>();
  private readonly reflectors: Reflector[];
  private readonly gatewayClasses: ManagedGatewayClass[];
  private readonly pending = new Set<string>();
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private listed = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private lastFailure: string | undefined;

  constructor(private readonly o: WaypointControllerOptions) {
    this.log = o.logger.child({ component: "waypoint-controller" });
    const b = o.reflector?.backoff;
    this.backoff = new Backoff(b?.initialMs ?? 500, b?.maxMs ?? 30_000);
    const common = { kc: o.kc, logger: this.log, ...(o.reflector ?? {}) };
    this.gatewayClasses = gatewayClasses().map(
      (cls) => new ManagedGatewayClass(cls, o.kc, this.log, () => this.kick(), o.reflector),
    );
    this.reflectors = [
      new Reflector({
        ...common,
        resource: GATEWAYS,
        onEvent: (t, obj) => this.onGateway(t, obj as Gateway),
      }),
      ...Object.values(MANAGED).map(
        (resource) =>
          new Reflector({
            ...common,
            resource,
            // Only what a gateway controller made: the API server filters, we never hold the rest.
            labelSelector: `${GATEWAY_MANAGED_LABEL} in (${MESH_CONTROLLER},${GATEWAY_CONTROLLER})`,
            onEvent: (t, obj) => this.onManaged(t, obj),
          }),
      ),
    ];
  }

  /** Lists everything once, creates the GatewayClasses if missing, then reconciles every Gateway. */
  async start(): Promise<void> {
    await Promise.all([
      ...this.reflectors.map((r) => r.start()),
      ...this.gatewayClasses.map((c) => c.start()),
    ]);
    this.listed = true;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await Promise.all([...this.reflectors.map((r) => r.stop()), ...this.gatewayClasses.map((c) => c.stop())]);
    await this.running;
  }

  private onGateway(type: string, gw: Gateway): void {
    const key = `${gw.metadata.namespace}/${gw.metadata.name}`;
    if (type === "DELETED") this.gateways.delete(key);
    else this.gateways.set(key, gw);
    this.enqueue(key);
  }

  private onManaged(type: string, obj: KubeObject): void {
    const key = managedKey(obj);
    if (type === "DELETED") this.managed.delete(key);
    else this.managed.set(key, obj);
    const gateway = obj.metadata.labels?.[GATEWAY_NAME_LABEL];
    if (gateway) this.enqueue(`${obj.metadata.namespace}/${gateway}`);
  }

  private enqueue(key: string): void {
    this.pending.add(key);
    this.kick();
  }

  private kick(): void {
    if (!this.listed || this.stopped || this.running || this.retry) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      // Events that arrived during the last write, unless a retry is already scheduled.
      if (this.pending.size > 0 && !this.retry) this.kick();
    });
  }

  /** The classes first, then one key at a time; the first failure stops and retries after a backoff. */
  private async drain(): Promise<void> {
    for (const cls of this.gatewayClasses)
      if (!(await this.attempt(`GatewayClass ${cls.name}`, () => cls.ensure()))) return;
    while (this.pending.size > 0 && !this.stopped) {
      const key = this.pending.values().next().value as string;
      this.pending.delete(key);
      if (!(await this.attempt(key, () => this.reconcile(key)))) {
        this.pending.add(key);
        return;
      }
    }
  }

  private async attempt(what: string, step: () => Promise<void>): Promise<boolean> {
    try {
      await step();
      this.backoff.reset();
      this.lastFailure = undefined;
      return true;
    } catch (err) {
      const status = apiStatusOf(err);
      // The namespace is gone (404) or terminating (403): its Gateway's deletion follows.
      const isClass = what.startsWith("GatewayClass ");
      if (!isClass && (status === 404 || status === 403)) {
        this.log.debug({ waypoint: what, status }, `not writing: ${errorMessage(err)}`);
        return true;
      }
      const delay = this.backoff.next();
      const message = `${isClass ? what : `Gateway ${what}`}: ${errorMessage(err)}`;
      // The same failure again (the API server still away) is one warning, not one per retry.
      this.log[message === this.lastFailure ? "debug" : "warn"](
        { waypoint: what, code: findCode(err), status, retryInMs: delay },
        message,
      );
      this.lastFailure = message;
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.kick();
      }, delay);
      return false;
    }
  }

  private async reconcile(key: string): Promise<void> {
    const gw = this.gateways.get(key);
    if (!gw || !isDeployedClass(gw)) return this.release(key, gw, new Set());
    const role = isIngressGateway(gw) ? "gateway" : "waypoint";
    const desired = gatewayObjects(gw, this.o);
    const objects = [desired.serviceAccount, desired.deployment, desired.service];
    // A Gateway that changed class keeps its former objects (other names) until released here.
    await this.release(key, gw, new Set(objects.map(managedKey)));
    const applied: string[] = [];
    for (const obj of objects) {
      const held = this.managed.get(managedKey(obj));
      // Only what is not in place is written: defaults and others' fields are left alone, and an
      // edit of one of our fields (an image, a label) is taken back.
      if (held && contains(held, obj)) continue;
      const written = await serverSideApply<KubeObject>(this.o.kc, MANAGED[obj.kind]!, obj as never, {
        fieldManager: FIELD_MANAGER,
        force: true,
      });
      this.managed.set(managedKey(written), written);
      applied.push(obj.kind);
    }
    if (applied.length > 0) this.log.info({ waypoint: key }, `${role} ${key}: applied ${applied.join(", ")}`);

    const [namespace, name] = key.split("/") as [string, string];
    const deployed = deployedName(gw);
    const status = gatewayStatus(gw, {
      service: this.managed.get(`Service/${namespace}/${deployed}`) as Service | undefined,
      deployment: this.managed.get(`Deployment/${namespace}/${deployed}`),
      clusterDomain: this.o.clusterDomain,
      now: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    });
    if (!statusChanged(gw.status, status)) return;
    const written = await serverSideApply<Gateway>(
      this.o.kc,
      GATEWAYS,
      { apiVersion: GATEWAYS.group + "/v1", kind: "Gateway", metadata: { name, namespace }, status } as never,
      { fieldManager: FIELD_MANAGER, force: true, subresource: "status" },
    );
    this.gateways.set(key, written);
    const programmed = status.conditions.find((c) => c.type === "Programmed")!;
    this.log.info(
      { waypoint: key, programmed: programmed.status, reason: programmed.reason },
      `${role} ${key}: Programmed=${programmed.status}: ${programmed.message}`,
    );
  }

  /**
   * A Gateway that left its class (for another, or one we do not deploy) keeps its objects until
   * garbage collection would take them (never, while it exists): delete those it owns that `keep`
   * does not name. A deleted Gateway needs nothing here, the garbage collector follows its
   * ownerReferences.
   */
  private async release(key: string, gw: Gateway | undefined, keep: ReadonlySet<string>): Promise<void> {
    if (!gw?.metadata.uid) return;
    const [namespace, name] = key.split("/") as [string, string];
    const stale = [...this.managed.entries()].filter(
      ([k, obj]) =>
        !keep.has(k) &&
        obj.metadata.namespace === namespace &&
        obj.metadata.labels?.[GATEWAY_NAME_LABEL] === name &&
        obj.metadata.ownerReferences?.some((r) => r.uid === gw.metadata.uid),
    );
    for (const [, obj] of stale) {
      await requestJson(this.o.kc, "DELETE", objectPath(MANAGED[obj.kind]!, obj.metadata.name, namespace), {
        propagationPolicy: "Background",
      }).catch((err) => {
        if (apiStatusOf(err) !== 404) throw err;
      });
      const formerClass = obj.metadata.labels?.[GATEWAY_CLASS_LABEL];
      this.log.info(
        { waypoint: key },
        `Gateway ${key}: deleted ${obj.kind} ${obj.metadata.name} (the Gateway is no longer of class ${formerClass})`,
      );
    }
  }
}

/** Starts the controller; resolves once the first lists are in and the GatewayClass exists. */
export async function startWaypointController(o: WaypointControllerOptions): Promise<WaypointController> {
  const controller = new WaypointController(o);
  await controller.start();
  return controller;
}

function managedKey(obj: KubeObject): string {
  return `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
}

/** Every field of `wanted` has the same value in `actual` (lists: same length, element by element). */
export function contains(actual: unknown, wanted: unknown): boolean {
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(actual) &&
      actual.length === wanted.length &&
      wanted.every((w, i) => contains(actual[i], w))
    );
  }
  if (wanted !== null && typeof wanted === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
    return Object.entries(wanted).every(([k, v]) => contains((actual as Record<string, unknown>)[k], v));
  }
  return actual === wanted;
}
