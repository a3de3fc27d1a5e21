// The node agent: learns pods from the CNI plugin (ADD/DEL), decides enrolment from labels, writes
// the in-pod redirection rules, keeps the host's probe SNAT rules, tells ztunnel, and records the
// redirection annotation. Every change goes through one queue so rules, ztunnel and the registry
// never disagree for long; a restarted agent reconciles from the registry file (rules rewritten
// as a whole, so nothing is duplicated and stale rules go).

import { type InpodPod, type Logger, workloadUid } from "@ambient/core";
import { isAmbientEnrolled } from "@ambient/kube";
import { exists } from "../fs.js";
import { type PodAnnotator, REDIRECTION_ANNOTATION } from "./annotations.js";
import type { ClusterSource } from "./cluster-source.js";
import type { NodePod, PodRegistry } from "./pod-registry.js";
import type { ZtunnelServer } from "./ztunnel-server.js";

/** What actually changes packets: in-pod rules and the host's probe SNAT (real: iptables). */
export interface Redirection {
  /** Writes (or rewrites) the pod's in-pod rules; idempotent. */
  enable(pod: NodePod): Promise<void>;
  /** Removes them; idempotent, and fine when the netns is already gone. */
  disable(pod: NodePod): Promise<void>;
  /** The host SNAT rules for kubelet probes, for exactly these enrolled pod IPs. */
  probes(podIps: string[]): Promise<void>;
}

/** Where a capture failure is shown to operators besides the log. */
export interface CaptureEvents {
  captureFailed(namespace: string, name: string, uid: string | undefined, message: string): void;
}

export class AgentError extends Error {
  override readonly name = "AgentError";
  constructor(
    message: string,
    /** 4xx: the request was wrong; 5xx: we could not do it. */
    readonly status: number,
  ) {
    super(message);
  }
}

export interface CniAddRequest {
  containerId: string;
  netns: string;
  ifName: string;
  podName: string;
  podNamespace: string;
  ips: string[];
}

export interface CniDelRequest {
  containerId: string;
  netns?: string;
  ifName: string;
  podName: string;
  podNamespace: string;
}

export interface NodeAgentOptions {
  nodeName: string;
  clusterId: string;
  source: ClusterSource;
  registry: PodRegistry;
  redirection: Redirection;
  ztunnels: ZtunnelServer;
  annotator: PodAnnotator;
  /** In a cluster: Events on pods that could not be captured (kube-events.ts). */
  events?: CaptureEvents;
  excludeNamespaces: readonly string[];
  logger: Logger;
}

export class NodeAgent {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly o: NodeAgentOptions) {
    this.log = o.logger;
  }

  /** Pods that are enrolled right now, as ztunnel sees them (replayed to each new ztunnel). */
  enrolledPods(): InpodPod[] {
    return this.o.registry
      .all()
      .filter((p) => p.enrolled)
      .map(toInpod);
  }

  /** On start: forget pods whose netns is gone, rewrite everyone's rules, then follow label changes. */
  async start(): Promise<void> {
    await this.o.registry.load();
    await this.serialize(async () => {
      for (const pod of this.o.registry.all()) {
        if (!(await exists(pod.netns))) {
          this.log.info({ pod: key(pod), netns: pod.netns }, "pod's netns is gone; forgetting it");
          await this.o.registry.delete(pod.namespace, pod.name);
          this.o.annotator.set(pod.namespace, pod.name, undefined);
        }
      }
      for (const pod of this.o.registry.all()) await this.reconcile(pod, { resync: true });
      await this.syncProbes();
    });
    this.o.source.onChange(() => void this.reconcileAll());
  }

  /** Label changes (namespace labelled/unlabelled, pod label edited): enrol or unenrol running pods. */
  reconcileAll(): Promise<void> {
    return this.serialize(async () => {
      for (const pod of this.o.registry.all()) await this.reconcile(pod, { resync: false });
      await this.syncProbes();
    });
  }

  /** CNI ADD: remember the pod and, if it belongs in the mesh, redirect it before it starts. */
  cniAdd(req: CniAddRequest): Promise<{ enrolled: boolean }> {
    return this.serialize(async () => {
      if (!(await exists(req.netns)))
        throw new AgentError(
          `network namespace ${req.netns} does not exist (pod ${req.podNamespace}/${req.podName})`,
          400,
        );
      // Enrolment is decided from the pod's labels: a pod the cluster does not know (yet) is not
      // started outside the mesh by default; the runtime retries the ADD.
      const excluded = this.o.excludeNamespaces.includes(req.podNamespace);
      if (!excluded && !this.o.source.pod(req.podNamespace, req.podName)) await this.o.source.refresh();
      if (!excluded && !this.o.source.pod(req.podNamespace, req.podName))
        throw new AgentError(
          `pod ${req.podNamespace}/${req.podName} is not known to the cluster source on node ${this.o.nodeName}; cannot decide whether it belongs in the mesh (retry once the pod exists)`,
          404,
        );
      const previous = this.o.registry.get(req.podNamespace, req.podName);
      if (previous?.enrolled && previous.netns !== req.netns) {
        // A new sandbox for the same pod: the old netns's rules and listeners are obsolete.
        await this.unenrol(previous);
      }
      const pod: NodePod = {
        uid: workloadUid(this.o.clusterId, req.podNamespace, req.podName),
        name: req.podName,
        namespace: req.podNamespace,
        containerId: req.containerId,
        netns: req.netns,
        ips: req.ips,
        enrolled: previous?.enrolled === true && previous.netns === req.netns,
      };
      await this.o.registry.put(pod);
      await this.reconcile(pod, { resync: true, fromCni: true });
      await this.syncProbes();
      return { enrolled: pod.enrolled };
    });
  }

  /** CNI DEL: idempotent; the netns may already be gone. */
  cniDel(req: CniDelRequest): Promise<void> {
    return this.serialize(async () => {
      const pod = this.o.registry.get(req.podNamespace, req.podName);
      if (!pod) return;
      if (req.containerId && pod.containerId !== req.containerId) {
        this.log.info({ pod: key(pod), containerId: req.containerId }, "DEL for an older sandbox; ignored");
        return;
      }
      if (pod.enrolled) await this.unenrol(pod);
      await this.o.registry.delete(pod.namespace, pod.name);
      this.o.annotator.set(pod.namespace, pod.name, undefined);
      await this.syncProbes();
    });
  }

  private async reconcile(pod: NodePod, opts: { resync: boolean; fromCni?: boolean }): Promise<void> {
    const want = this.wanted(pod);
    if (want && (!pod.enrolled || opts.resync)) {
      await this.enrol(pod, opts.fromCni === true);
    } else if (!want && pod.enrolled) {
      await this.unenrol(pod);
    } else if (!want && opts.resync) {
      // Not ours: make sure no rule of ours survived a crash between writing rules and the registry.
      await this.o.redirection.disable(pod).catch(() => {});
    }
  }

  /** Shows the failure on the pod (kubectl get events), and returns it for the caller to throw. */
  private captureFailed(pod: NodePod, err: AgentError): AgentError {
    const uid = this.o.source.pod(pod.namespace, pod.name)?.metadata.uid;
    this.o.events?.captureFailed(pod.namespace, pod.name, uid, err.message);
    return err;
  }

  private wanted(pod: NodePod): boolean {
    if (this.o.excludeNamespaces.includes(pod.namespace)) return false;
    const obj = this.o.source.pod(pod.namespace, pod.name);
    if (!obj) return false;
    return isAmbientEnrolled(obj, this.o.source.namespace(pod.namespace));
  }

  private async enrol(pod: NodePod, fromCni: boolean): Promise<void> {
    // A new pod must not start with its traffic redirected to a ztunnel that is not there: fail the
    // ADD (the runtime retries) rather than start it outside the mesh or black-holed.
    if (fromCni && this.o.ztunnels.connected === 0)
      throw new AgentError(
        `no ztunnel is connected to the agent on node ${this.o.nodeName}; retry when ztunnel is ready`,
        503,
      );
    try {
      await this.o.redirection.enable(pod);
    } catch (err) {
      throw this.captureFailed(
        pod,
        new AgentError(
          `cannot write redirection rules for ${key(pod)} in ${pod.netns}: ${(err as Error).message}`,
          500,
        ),
      );
    }
    try {
      await this.o.ztunnels.add(toInpod(pod));
    } catch (err) {
      if (fromCni) {
        await this.o.redirection.disable(pod).catch(() => {});
        throw this.captureFailed(
          pod,
          new AgentError(`ztunnel did not take pod ${key(pod)}: ${(err as Error).message}`, 503),
        );
      }
      // A label change with ztunnel away: it gets the pod in the replay when it reconnects.
      this.log.warn(
        { pod: key(pod), err: (err as Error).message },
        "ztunnel did not acknowledge; it gets the pod on reconnect",
      );
    }
    const was = pod.enrolled;
    pod.enrolled = true;
    await this.o.registry.put(pod);
    this.o.annotator.set(pod.namespace, pod.name, { [REDIRECTION_ANNOTATION]: "enabled" });
    if (!was)
      this.log.info(
        { pod: key(pod), netns: pod.netns, ips: pod.ips },
        "pod enrolled: traffic redirected to ztunnel",
      );
  }

  private async unenrol(pod: NodePod): Promise<void> {
    // ztunnel first: it stops listening before the rules that send traffic to it go away.
    await this.o.ztunnels
      .del(pod.uid)
      .catch((err) =>
        this.log.warn(
          { pod: key(pod), err: (err as Error).message },
          "ztunnel did not acknowledge the removal",
        ),
      );
    await this.o.redirection
      .disable(pod)
      .catch((err) =>
        this.log.warn({ pod: key(pod), err: (err as Error).message }, "removing redirection rules failed"),
      );
    pod.enrolled = false;
    await this.o.registry.put(pod);
    this.o.annotator.set(pod.namespace, pod.name, undefined);
    this.log.info({ pod: key(pod) }, "pod unenrolled: traffic no longer redirected");
  }

  private async syncProbes(): Promise<void> {
    const ips = this.o.registry
      .all()
      .filter((p) => p.enrolled)
      .flatMap((p) => p.ips);
    await this.o.redirection
      .probes(ips)
      .catch((err) =>
        this.log.error({ err: (err as Error).message }, "cannot write the host's probe SNAT rules"),
      );
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

function toInpod(p: NodePod): InpodPod {
  return { uid: p.uid, name: p.name, namespace: p.namespace, netns: p.netns, ips: p.ips };
}

function key(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}
