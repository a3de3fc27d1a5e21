// The agent's Redirection backed by iptables: in-pod rules per pod, the host probe SNAT for the
// set of enrolled pods. Structural, so this folder does not depend on the agent's types.

import type { Logger } from "@ambient/core";
import type { ExecOptions } from "./exec.js";
import { applyHostProbeRules, removeHostProbeRules } from "./host-probe.js";
import { applyInPodRules, removeInPodRules } from "./in-pod.js";
import { enableListenerHandoff } from "./listener-handoff.js";
import { hasIPv6 } from "./rules.js";

/** The part of a pod the rules need. */
export interface PodNetwork {
  /** Path of the pod's network namespace. */
  netns: string;
  ips: readonly string[];
}

export interface IptablesRedirectionOptions extends ExecOptions {
  /** Where the node's probe SNAT goes; undefined: the agent's own netns (it runs in the node's). */
  hostNetns?: string;
  /** Write the host probe SNAT (default true); when false, any of ours is removed instead. */
  hostProbeSnat?: boolean;
  /** Capture every enrolled pod's port 53 into ztunnel's DNS proxy (15053). */
  dnsCapture?: boolean;
  logger?: Logger;
}

export class IptablesRedirection {
  constructor(private readonly opts: IptablesRedirectionOptions = {}) {}

  async enable(pod: PodNetwork): Promise<void> {
    const { changed } = await applyInPodRules(pod.netns, {
      ...this.opts,
      ipv6: hasIPv6(pod.ips),
      dnsCapture: this.opts.dnsCapture ?? false,
    });
    this.opts.logger?.debug({ netns: pod.netns, changed }, "in-pod rules in place");
    // Without it (kernels before 5.14) capture works; only a ztunnel rollout may reset the few
    // connections queued on the old listeners at the moment they close.
    await enableListenerHandoff(pod.netns, this.opts).catch((err) =>
      this.opts.logger?.warn(
        { netns: pod.netns, err: (err as Error).message },
        "cannot enable net.ipv4.tcp_migrate_req; a ztunnel rollout may reset queued connections",
      ),
    );
  }

  /** Resolves when the netns is already gone: with it went the rules. */
  async disable(pod: PodNetwork): Promise<void> {
    const outcome = await removeInPodRules(pod.netns, this.opts);
    this.opts.logger?.debug({ netns: pod.netns, outcome }, "in-pod rules removed");
  }

  async probes(podIps: string[]): Promise<void> {
    const { changed } =
      this.opts.hostProbeSnat === false
        ? await removeHostProbeRules(this.opts.hostNetns, this.opts)
        : await applyHostProbeRules(this.opts.hostNetns, podIps, this.opts);
    if (changed) this.opts.logger?.info({ pods: podIps.length }, "host probe SNAT rules rewritten");
  }
}
