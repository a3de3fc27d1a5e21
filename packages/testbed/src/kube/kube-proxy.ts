// kube-proxy and cluster DNS for the netns cluster, from the API: every node netns DNATs Service
// VIPs to ready endpoints (for pods outside the mesh; ztunnel takes VIP traffic of mesh pods before
// it leaves the pod), and every pod netns gets a hosts file naming the Services, as the netns mesh
// does from its folder (netns/service-proxy.ts and pods.ts hold the rules and the file format).

import type { Logger } from "@ambient/core";
import { kindInfo } from "@ambient/kube";
import { KubeApiSource, type KubeConfig } from "@ambient/kube/api";
import { serviceHostsEntries } from "../netns/manifests-rewrite.js";
import { removeHostsFile, writeHostsFile } from "../netns/pods.js";
import { applyServiceRules, serviceRules } from "../netns/service-proxy.js";
import type { Topology } from "../netns/topology.js";

export class KubeProxy {
  private readonly source: KubeApiSource;
  /** Pod netns → the pod's namespace (bare Service names resolve within it). */
  private readonly sandboxes = new Map<string, string>();
  private applied: string | undefined;
  private syncing: Promise<void> = Promise.resolve();

  constructor(
    kc: KubeConfig,
    private readonly topology: Topology,
    private readonly logger: Logger,
    reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } },
  ) {
    this.source = new KubeApiSource(kc, {
      logger: logger.child({ component: "kube-proxy" }),
      kinds: [kindInfo("v1", "Service")!, kindInfo("v1", "Pod")!],
      ...(reflector ? { reflector } : {}),
    });
  }

  async start(): Promise<void> {
    this.source.onChange(() => this.schedule());
    await this.source.start();
    await this.schedule();
  }

  /** A new pod netns: its hosts file now, before its app starts. */
  async addSandbox(netns: string, namespace: string): Promise<void> {
    this.sandboxes.set(netns, namespace);
    await this.serially(() => writeHostsFile(netns, serviceHostsEntries(this.source.objects(), namespace)));
  }

  async removeSandbox(netns: string): Promise<void> {
    this.sandboxes.delete(netns);
    await this.serially(() => removeHostsFile(netns));
  }

  /**
   * Every hosts-file write and removal runs after the one before: a sync writing a pod's file
   * while its sandbox is added (both rename the same temporary file) or removed failed with ENOENT
   * and left the other pods' files unwritten until the next change.
   */
  private serially(op: () => Promise<unknown>): Promise<void> {
    const run = this.syncing.then(op).then(() => {});
    this.syncing = run.catch(() => {});
    return run;
  }

  async stop(): Promise<void> {
    await this.source.stop();
    await this.syncing;
  }

  private schedule(): Promise<void> {
    this.syncing = this.syncing
      .then(() => this.sync())
      .catch((err: Error) =>
        this.logger.warn({ err: err.message }, "service rules or hosts files not written"),
      );
    return this.syncing;
  }

  private async sync(): Promise<void> {
    const objects = this.source.objects();
    const rules = serviceRules(objects);
    const text = rules.join("\n");
    if (text !== this.applied) {
      for (const node of this.topology.nodes) await applyServiceRules(node.netns, rules);
      this.applied = text;
    }
    for (const [netns, namespace] of this.sandboxes) {
      await writeHostsFile(netns, serviceHostsEntries(objects, namespace));
    }
  }
}
