// Where the agent learns pod and namespace labels. In a cluster that is the Kubernetes API (a
// list/watch of the node's pods and all namespaces); without one, the same manifests folder the
// control plane reads. Either is an ObjectSource; the agent only needs lookups and a "something
// changed" signal, so this view indexes the source's pods and namespaces by key.

import type { Logger } from "@ambient/core";
import { isNamespace, isPod, kindInfo, type Namespace, type ObjectSource, type Pod } from "@ambient/kube";
import { KubeAnnotator } from "./kube-annotator.js";
import { KubeEvents } from "./kube-events.js";

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

/** Pods and namespaces of an ObjectSource, re-indexed after each of its changes. */
export class SourceIndex implements ClusterSource {
  private pods = new Map<string, Pod>();
  private namespaces = new Map<string, Namespace>();
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly source: ObjectSource) {
    source.onChange(() => this.reindex());
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

  async refresh(): Promise<void> {
    await this.source.refresh();
  }

  async start(): Promise<void> {
    await this.source.start();
    // A source whose first load found nothing new emits no change; index what is there anyway.
    this.reindex();
  }

  stop(): Promise<void> {
    return this.source.stop();
  }

  private reindex(): void {
    const pods = new Map<string, Pod>();
    const namespaces = new Map<string, Namespace>();
    for (const o of this.source.objects()) {
      if (isPod(o)) pods.set(`${o.metadata.namespace ?? "default"}/${o.metadata.name}`, o);
      else if (isNamespace(o)) namespaces.set(o.metadata.name, o);
    }
    this.pods = pods;
    this.namespaces = namespaces;
    for (const l of this.listeners) l();
  }
}

/**
 * A manifests folder, followed as it changes (local and netns modes). Loaded on demand: the YAML
 * parsers and the file watcher stay out of an agent that reads the Kubernetes API.
 */
export async function manifestsClusterSource(dir: string, logger: Logger): Promise<ClusterSource> {
  const { FolderSource } = await import("@ambient/kube/manifests");
  return new SourceIndex(new FolderSource(dir, { logger }));
}

export interface KubeCluster {
  source: ClusterSource;
  annotator: KubeAnnotator;
  events: KubeEvents;
}

/**
 * The Kubernetes API (`kubeconfig`, or in-cluster when undefined): only this node's pods, by field
 * selector as Istio's agent watches them, and every namespace (their labels enrol pods). The
 * annotator patches through the same credentials. Loaded on demand: the client library stays out
 * of an agent that reads a folder.
 */
export async function kubeCluster(
  kubeconfig: string | undefined,
  nodeName: string,
  logger: Logger,
  tuning: { backoff?: { initialMs: number; maxMs: number } } = {},
): Promise<KubeCluster> {
  const { KubeApiSource, loadKubeConfig, mergePatch, requestJson } = await import("@ambient/kube/api");
  const kc = loadKubeConfig(kubeconfig);
  const source = new SourceIndex(
    new KubeApiSource(kc, {
      logger,
      kinds: [kindInfo("v1", "Pod")!, kindInfo("v1", "Namespace")!],
      fieldSelectors: { Pod: `spec.nodeName=${nodeName}` },
      ...(tuning.backoff && { reflector: { backoff: tuning.backoff } }),
    }),
  );
  const annotator = new KubeAnnotator({
    patch: (path, body) => mergePatch(kc, path, body),
    observed: (namespace, name) => source.pod(namespace, name)?.metadata.annotations,
    logger,
    ...(tuning.backoff && { backoff: tuning.backoff }),
  });
  const events = new KubeEvents({
    post: (path, body) => requestJson(kc, "POST", path, body),
    nodeName,
    logger,
  });
  return { source, annotator, events };
}
