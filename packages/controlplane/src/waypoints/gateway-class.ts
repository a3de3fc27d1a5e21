// The GatewayClass `istio-waypoint`, which Istio creates by itself: created when missing (and again
// if someone deletes it), marked Accepted when it names our controller. A class the cluster already
// has is never rewritten: another controller's class is reported once and left alone.

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
import { WAYPOINT_CLASS } from "../translate/waypoints.js";
import { GATEWAY_API_VERSION, MESH_CONTROLLER_NAME, waypointGatewayClass } from "./desired.js";

const GATEWAY_CLASSES: ResourceRef = {
  group: "gateway.networking.k8s.io",
  version: "v1",
  plural: "gatewayclasses",
  kind: "GatewayClass",
  namespaced: false,
};
/** Istio's gateway controller writes as this manager; so do we, so either can take over from the other. */
export const FIELD_MANAGER = "istio.io/gateway-controller";

export class WaypointClass {
  private current: KubeObject | undefined;
  private readonly reflector: Reflector;
  private warnedController: string | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly log: Logger,
    /** Called when the class changed or went away: the controller runs `ensure` again. */
    private readonly onChange: () => void,
    reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } },
  ) {
    this.reflector = new Reflector({
      kc,
      logger: log,
      resource: GATEWAY_CLASSES,
      fieldSelector: `metadata.name=${WAYPOINT_CLASS}`,
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
          waypointGatewayClass(),
        );
        this.log.info(`created GatewayClass ${WAYPOINT_CLASS}`);
      } catch (err) {
        // Created meanwhile (by us before a restart, or by a user): the watch brings it.
        if (apiStatusOf(err) === 409) return;
        throw err;
      }
    }
    const cls = this.current!;
    const controller = (cls.spec as { controllerName?: string } | undefined)?.controllerName;
    if (controller !== MESH_CONTROLLER_NAME) {
      if (this.warnedController !== controller) {
        this.warnedController = controller;
        this.log.warn(
          { controllerName: controller },
          `GatewayClass ${WAYPOINT_CLASS} names controller ${controller}, not ${MESH_CONTROLLER_NAME}; leaving it as it is`,
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
        metadata: { name: WAYPOINT_CLASS },
        status: {
          conditions: [
            {
              type: "Accepted",
              status: "True",
              reason: "Accepted",
              message: "Handled by Ambient's waypoint controller",
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
