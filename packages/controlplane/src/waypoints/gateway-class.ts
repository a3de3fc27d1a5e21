// The GatewayClasses `istio-waypoint` and `istio`, which Istio creates by itself: each created when
// missing (and again if someone deletes it), marked Accepted when it names our controller. A class
// the cluster already has is never rewritten: another controller's class is reported once and left alone.

import type { Logger } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import {
  apiStatusOf,
  type KubeConfig,
  Reflector,
  type ResourceRef,
  requestJson,
  serverSideApply,
} from "@ambient/kube/api";
import { GATEWAY_API_VERSION } from "./desired.js";

const GATEWAY_CLASSES: ResourceRef = {
  group: "gateway.networking.k8s.io",
  version: "v1",
  plural: "gatewayclasses",
  kind: "GatewayClass",
  namespaced: false,
};
/** Istio's gateway controller writes as this manager; so do we, so either can take over from the other. */
export const FIELD_MANAGER = "istio.io/gateway-controller";

export class ManagedGatewayClass {
  private current: KubeObject | undefined;
  private readonly reflector: Reflector;
  private warnedController: string | undefined;
  readonly name: string;
  private readonly controllerName: string;

  constructor(
    /** The class as desired.ts's gatewayClasses() makes it. */
    private readonly desired: KubeObject,
    private readonly kc: KubeConfig,
    private readonly log: Logger,
    /** Called when the class changed or went away: the controller runs `ensure` again. */
    private readonly onChange: () => void,
    reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } },
  ) {
    this.name = desired.metadata.name;
    this.controllerName = (desired.spec as { controllerName: string }).controllerName;
    this.reflector = new Reflector({
      kc,
      logger: log,
      resource: GATEWAY_CLASSES,
      fieldSelector: `metadata.name=${this.name}`,
      ...(reflector ?? {}),
      onEvent: (type, obj) => {
        this.current = type === "DELETED" ? undefined : obj;
        this.onChange();
      },
    });
  }

  start(): Promise<void> {
    return this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  /** Creates the class if missing and accepts it if it is ours; throws (to be retried) when the API fails. */
  async ensure(): Promise<void> {
    if (!this.current) {
      try {
        this.current = await requestJson<KubeObject>(
          this.kc,
          "POST",
          `/apis/${GATEWAY_CLASSES.group}/${GATEWAY_CLASSES.version}/${GATEWAY_CLASSES.plural}`,
          this.desired,
        );
        this.log.info(`created GatewayClass ${this.name}`);
      } catch (err) {
        // Created meanwhile (by us before a restart, or by a user): the watch brings it.
        if (apiStatusOf(err) === 409) return;
        throw err;
      }
    }
    const cls = this.current!;
    const controller = (cls.spec as { controllerName?: string } | undefined)?.controllerName;
    if (controller !== this.controllerName) {
      if (this.warnedController !== controller) {
        this.warnedController = controller;
        this.log.warn(
          { controllerName: controller },
          `GatewayClass ${this.name} names controller ${controller}, not ${this.controllerName}; leaving it as it is`,
        );
      }
      return;
    }
    const conditions = ((cls.status as { conditions?: { type: string; status: string }[] } | undefined)
      ?.conditions ?? []) as { type: string; status: string }[];
    if (conditions.some((c) => c.type === "Accepted" && c.status === "True")) return;
    this.current = await serverSideApply<KubeObject>(
      this.kc,
      GATEWAY_CLASSES,
      {
        apiVersion: GATEWAY_API_VERSION,
        kind: "GatewayClass",
        metadata: { name: this.name },
        status: {
          conditions: [
            {
              type: "Accepted",
              status: "True",
              reason: "Accepted",
              message: "Handled by Ambient's gateway controller",
              ...(typeof cls.metadata.generation === "number"
                ? { observedGeneration: cls.metadata.generation }
                : {}),
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            },
          ],
        },
      } as never,
      { fieldManager: FIELD_MANAGER, force: true, subresource: "status" },
    );
  }
}
