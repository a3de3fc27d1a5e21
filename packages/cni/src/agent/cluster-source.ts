// Where the agent learns pod and namespace labels. In a cluster that is the Kubernetes API (a
// list/watch of the node's pods and all namespaces); without one, the same manifests folder the
// control plane reads. The agent only needs lookups and a "something changed" signal.

import {
  FolderWatcher,
  isNamespace,
  isPod,
  ManifestStore,
  type Namespace,
  type Pod,
} from "@ambient/controlplane";
import type { Logger } from "@ambient/core";

export interface ClusterSource {
  pod(namespace: string, name: string): Pod | undefined;
  namespace(name: string): Namespace | undefined;
  /** Called after every batch of changes (labels edited, pods added or removed). */
  onChange(listener: () => void): void;
  /**
   * Catch up now (the folder is re-read; a watch is resynced): a CNI ADD can arrive before the
   * watch has delivered the pod it is for.
   */
  refresh(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A folder of manifests, followed as it changes (local and netns modes). */
export class ManifestSource implements ClusterSource {
  private readonly store: ManifestStore;
  private readonly watcher: FolderWatcher;
  private readonly listeners: Array<() => void> = [];
  private pods = new Map<string, Pod>();
  private namespaces = new Map<string, Namespace>();

  constructor(dir: string, logger: Logger) {
    this.store = new ManifestStore(dir, logger);
    this.watcher = new FolderWatcher(dir, () => this.reload(), logger);
  }

  pod(namespace: string, name: string): Pod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }

  namespace(name: string): Namespace | undefined {
    return this.namespaces.get(name);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  refresh(): Promise<void> {
    return this.reload();
  }

  async start(): Promise<void> {
    await this.reload();
    await this.watcher.start();
  }

  async stop(): Promise<void> {
    await this.watcher.stop();
  }

  private async reload(): Promise<void> {
    const { changed } = await this.store.reload();
    if (!changed && this.pods.size + this.namespaces.size > 0) return;
    const pods = new Map<string, Pod>();
    const namespaces = new Map<string, Namespace>();
    for (const o of this.store.objects()) {
      if (isPod(o)) pods.set(`${o.metadata.namespace ?? "default"}/${o.metadata.name}`, o);
      else if (isNamespace(o)) namespaces.set(o.metadata.name, o);
    }
    this.pods = pods;
    this.namespaces = namespaces;
    for (const l of this.listeners) l();
  }
}
