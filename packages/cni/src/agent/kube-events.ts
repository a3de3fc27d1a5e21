// Events on pods the agent could not capture, where `kubectl describe pod` and `kubectl get events`
// show them: a core/v1 Event of type Warning, reason FailedCapture, from component ambient-cni on
// this node. Best effort, as every Kubernetes event recorder is: a failed post is logged, not retried.

import { errorMessage, type Logger } from "@ambient/core";

const CAPTURE_FAILED_REASON = "FailedCapture";
/** The Event's source: the agent's name (Istio's agent reports as istio-cni). */
const COMPONENT = "ambient-cni";

export interface KubeEventsOptions {
  /** POST of a JSON body to `path` (`@ambient/kube/api`'s requestJson); rejects on a non-2xx. */
  post(path: string, body: unknown): Promise<unknown>;
  nodeName: string;
  logger: Logger;
  /** Tests: the clock. */
  now?: () => Date;
}

export class KubeEvents {
  private seq = 0;

  constructor(private readonly o: KubeEventsOptions) {}

  /** A Warning on the pod: why its traffic is not redirected to ztunnel. */
  captureFailed(namespace: string, name: string, uid: string | undefined, message: string): void {
    const now = (this.o.now?.() ?? new Date()).toISOString();
    // Unique per post, as client-go's recorder names events <object>.<timestamp in hex>.
    const eventName = `${name}.${Date.now().toString(16)}${(this.seq++).toString(16)}`;
    const body = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: eventName, namespace },
      involvedObject: { apiVersion: "v1", kind: "Pod", namespace, name, ...(uid ? { uid } : {}) },
      type: "Warning",
      reason: CAPTURE_FAILED_REASON,
      message,
      source: { component: COMPONENT, host: this.o.nodeName },
      reportingComponent: COMPONENT,
      reportingInstance: `${COMPONENT}-${this.o.nodeName}`,
      firstTimestamp: now.replace(/\.\d+Z$/, "Z"),
      lastTimestamp: now.replace(/\.\d+Z$/, "Z"),
      count: 1,
    };
    this.o.post(`/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, body).catch((err: unknown) => {
      this.o.logger.warn(
        { pod: `${namespace}/${name}` },
        `cannot record event ${CAPTURE_FAILED_REASON}: ${errorMessage(err)}`,
      );
    });
  }
}
