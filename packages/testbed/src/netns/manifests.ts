// The "kubelet + API server" of a netns mesh: follows the user's manifests folder and keeps a
// generated folder that the control plane and the node agents read, where addresses and pod
// status are the real ones (manifests-rewrite.ts). Layout: one generated file per source file,
// same relative path, holding that file's objects in force as JSON documents ("---" separated;
// JSON is YAML, so the ordinary loader reads it). Objects the loader rejects are left out (it
// logs why, naming the source file); a file is rewritten only when its content changes, by
// rename, so a reader never sees half a file.

import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { synthesizeWaypoints } from "@ambient/controlplane";
import type { Logger } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { FolderWatcher, ManifestStore } from "@ambient/kube/manifests";
import { NetnsErrorCode, netnsError } from "./errors.js";
import {
  type PodPlan,
  type PodRuntimeState,
  planPods,
  podKey,
  rewriteObject,
  serviceHostsEntries,
  VipAllocator,
} from "./manifests-rewrite.js";
import type { HostsEntry } from "./pods.js";

/** Where the generated folder holds the waypoints' Pods and Services (see sourceEntries). */
const SYNTHESIZED_FILE = "ambient-waypoints.generated.yaml";

export interface NetnsManifestsOptions {
  /** The user's folder (never written). */
  sourceDir: string;
  /** The generated folder; emptied at start. Must not be inside sourceDir or contain it. */
  outDir: string;
  /** The topology's nodes and their netns addresses. */
  nodes: readonly { name: string; ip: string }[];
  logger: Logger;
  /** Follow the source folder. Default true. */
  watch?: boolean;
}

export class NetnsManifests {
  private readonly store: ManifestStore;
  private readonly watcher: FolderWatcher | undefined;
  private readonly nodes: Map<string, string>;
  private readonly podStates = new Map<string, PodRuntimeState>();
  private readonly vipAllocator = new VipAllocator();
  private readonly listeners = new Set<() => void>();
  /** Generated file (relative path) → the text last written there. */
  private readonly written = new Map<string, string>();
  private rewritten: KubeObject[] = [];
  private reportedVip = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  /** A rewrite queued but not started yet: later requests join it instead of queueing another. */
  private pending: Promise<void> | undefined;
  private stopped = false;

  private constructor(private readonly opts: NetnsManifestsOptions) {
    this.store = new ManifestStore(opts.sourceDir, opts.logger);
    this.nodes = new Map(opts.nodes.map((n) => [n.name, n.ip]));
    if (opts.watch ?? true) {
      this.watcher = new FolderWatcher(opts.sourceDir, () => this.sourceChanged(), opts.logger);
    }
  }

  static async start(opts: NetnsManifestsOptions): Promise<NetnsManifests> {
    const src = resolve(opts.sourceDir);
    const out = resolve(opts.outDir);
    if (out === src || out.startsWith(src + sep) || src.startsWith(out + sep)) {
      // Our own writes would come back as source edits, and emptying outDir would eat the source.
      throw netnsError(
        NetnsErrorCode.NAME_INVALID,
        `the generated manifests folder ${out} must be outside ${src} (and not contain it)`,
        { sourceDir: src, outDir: out },
      );
    }
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    const m = new NetnsManifests({ ...opts, outDir: out });
    await m.store.reload();
    await m.schedule();
    await m.watcher?.start();
    return m;
  }

  get outDir(): string {
    return this.opts.outDir;
  }

  /** The objects as written to the generated folder. */
  objects(): KubeObject[] {
    return this.rewritten;
  }

  /** The pods that need a sandbox, per node (from the source objects; hostNetwork ones skipped). */
  plan(): PodPlan {
    return planPods(
      this.sourceEntries().map((e) => e.object),
      new Set(this.nodes.keys()),
    );
  }

  /**
   * The source objects plus the Pod and Service of every waypoint Gateway, as Istio's deployment
   * controller would create them: here they get a real sandbox, address and VIP like any pod, and
   * go to the generated folder in a file of their own.
   */
  private sourceEntries(): { object: KubeObject; file: string; index: number }[] {
    const entries = this.store.entries();
    const given = new Set<KubeObject>(entries.map((e) => e.object));
    const made = synthesizeWaypoints([...given]).objects.filter((o) => !given.has(o));
    return [
      ...entries.map((e) => ({ object: e.object, file: e.source.file, index: e.source.index })),
      ...made.map((object, index) => ({ object, file: SYNTHESIZED_FILE, index })),
    ];
  }

  /** Hosts-file lines for the mesh's Services, with bare names for `namespace`'s own. */
  hostsEntries(namespace?: string): HostsEntry[] {
    return serviceHostsEntries(this.rewritten, namespace);
  }

  /**
   * Records a pod's sandbox (its IP, whether its app is ready) or its removal (undefined) and
   * resolves once the generated folder says so.
   */
  async setPodState(namespace: string, name: string, state: PodRuntimeState | undefined): Promise<void> {
    const key = podKey(namespace, name);
    const before = this.podStates.get(key);
    if (JSON.stringify(before) === JSON.stringify(state)) return;
    if (state) this.podStates.set(key, { ...state });
    else this.podStates.delete(key);
    await this.schedule();
  }

  podState(namespace: string, name: string): PodRuntimeState | undefined {
    return this.podStates.get(podKey(namespace, name));
  }

  /** Called after the source folder changed and the generated one was rewritten. Returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when every requested rewrite has been written. */
  async flush(): Promise<void> {
    await this.chain;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watcher?.stop();
    await this.chain;
  }

  private async sourceChanged(): Promise<void> {
    const { changed } = await this.store.reload();
    if (!changed || this.stopped) return;
    await this.schedule();
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.opts.logger.error({ err }, "netns manifests listener failed");
      }
    }
  }

  private schedule(): Promise<void> {
    if (this.pending) return this.pending;
    const run = this.chain.then(() => {
      this.pending = undefined;
      return this.rewrite();
    });
    this.pending = run;
    this.chain = run.catch((err) => this.opts.logger.error({ err }, "cannot write the generated manifests"));
    return run;
  }

  private async rewrite(): Promise<void> {
    const entries = this.sourceEntries();
    const { vips, problems } = this.vipAllocator.assign(entries.map((e) => e.object));
    for (const p of problems) if (!this.reportedVip.has(p)) this.opts.logger.error(p);
    this.reportedVip = new Set(problems);
    const ctx = { nodes: this.nodes, pods: this.podStates, vips };

    const byFile = new Map<string, { index: number; object: KubeObject }[]>();
    const rewritten: KubeObject[] = [];
    for (const e of entries) {
      const object = rewriteObject(e.object, ctx);
      rewritten.push(object);
      const list = byFile.get(e.file) ?? [];
      list.push({ index: e.index, object });
      byFile.set(e.file, list);
    }
    for (const [file, objects] of byFile) {
      objects.sort((a, b) => a.index - b.index);
      const text = [
        `# Generated by ambientctl (netns mode) from ${file}: edit the source, not this file.`,
        ...objects.map((o) => `---\n${JSON.stringify(o.object, null, 2)}`),
        "",
      ].join("\n");
      if (this.written.get(file) === text) continue;
      await atomicWrite(join(this.opts.outDir, file), text);
      this.written.set(file, text);
    }
    for (const file of [...this.written.keys()]) {
      if (byFile.has(file)) continue;
      await rm(join(this.opts.outDir, file), { force: true });
      this.written.delete(file);
    }
    this.rewritten = rewritten;
  }
}

async function atomicWrite(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  // A dot-file: the loader and the folder watcher both skip it.
  const tmp = join(dir, `.${relative(dir, file)}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Generated files present in `outDir` (relative paths): for tests and `ambientctl` diagnostics. */
export async function listGenerated(outDir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else out.push(relative(outDir, full).split(sep).join("/"));
    }
  }
  await walk(outDir);
  return out.sort();
}
