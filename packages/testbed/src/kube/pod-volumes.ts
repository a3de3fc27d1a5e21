// The kubelet stand-in's volume manager: what a pod's volumes hold, written under the pod's folder
// on the host — projected service-account tokens (a TokenRequest bound to the pod, refreshed at 80%
// of their lifetime as the kubelet does), ConfigMaps (re-read every 30 s, written by rename),
// downward API files, hostPath and emptyDir — and the in-cluster credentials every pod gets.
// Processes here share the host's filesystem, so a container path is resolved to its host path,
// and a hostPath (a path on the node) to where the node's files are on this disk (`nodePath`).

import { mkdir, open, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "@ambient/core";
import type { Pod } from "@ambient/kube";
import type { KubeClient } from "./client.js";

/** Where Kubernetes mounts a pod's own API credentials (the ServiceAccount admission's kube-api-access volume). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
// The kubelet rotates a projected token once 80% of its lifetime has passed.
const TOKEN_REFRESH_FRACTION = 0.8;
// kube-api-access tokens: 3607 s, the API server's default for them.
const API_TOKEN_SECONDS = 3607;
// The kubelet syncs ConfigMap volumes every minute plus its cache TTL; 30 s keeps a test short.
const CONFIGMAP_SYNC_MS = 30_000;
// A failed token refresh is retried this soon (the old token is still valid for 20% of its life).
const RETRY_MS = 5_000;

/** A volume could not be set up yet (a ConfigMap that does not exist): the pod waits, as in ContainerCreating. */
export const VOLUME_NOT_READY = "AMB_KUBELET_VOLUME_NOT_READY";
export class VolumeNotReady extends Error {
  readonly code = VOLUME_NOT_READY;
}

interface KeyToPath {
  key: string;
  path: string;
}

interface VolumeSpec {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: Record<string, unknown>;
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  projected?: { sources?: ProjectionSource[] };
}

interface ProjectionSource {
  serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string };
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  downwardAPI?: { items?: { path: string; fieldRef?: { fieldPath: string } }[] };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
}

export interface PodVolumesOptions {
  client: KubeClient;
  pod: Pod;
  /** The pod's folder on the host; volumes go to `<dir>/volumes/<name>`. */
  dir: string;
  /** The API server as the pod reaches it (KUBERNETES_SERVICE_HOST/PORT and the in-cluster kubeconfig). */
  apiServer: { host: string; port: number };
  /** Where a node path (a hostPath volume's) is on this disk: the nodes of this cluster share one. */
  nodePath: (path: string) => string;
  logger: Logger;
}

export class PodVolumes {
  private readonly hostPaths = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  private constructor(private readonly o: PodVolumesOptions) {}

  /** Writes every volume once; throws VolumeNotReady while a required ConfigMap is missing. */
  static async setUp(o: PodVolumesOptions): Promise<PodVolumes> {
    const v = new PodVolumes(o);
    try {
      const volumes = [...((o.pod.spec?.volumes as VolumeSpec[] | undefined) ?? []), v.apiAccessVolume()];
      for (const vol of volumes) await v.setUpVolume(vol);
      await v.writeInClusterKubeconfig();
    } catch (err) {
      v.stop();
      throw err;
    }
    return v;
  }

  /** The host path of a path inside the container, through `mounts` (longest mount path wins). */
  resolve(mounts: readonly VolumeMount[], containerPath: string): string | undefined {
    const all = [...mounts, { name: API_ACCESS, mountPath: SERVICE_ACCOUNT_DIR }];
    let best: { mount: VolumeMount; host: string } | undefined;
    for (const m of all) {
      const host = this.hostPaths.get(m.name);
      if (!host) continue;
      const base = m.mountPath.replace(/\/+$/, "");
      if (containerPath !== base && !containerPath.startsWith(`${base}/`)) continue;
      if (!best || base.length > best.mount.mountPath.length)
        best = { mount: { ...m, mountPath: base }, host };
    }
    return best ? best.host + containerPath.slice(best.mount.mountPath.length) : undefined;
  }

  /**
   * A kubeconfig for the pod's own service account, as `rest.InClusterConfig` builds it from the
   * mounted files: our processes cannot see the container path, so they are given this file.
   * The token is re-read by the client (client-node's tokenFile provider), so rotation reaches it.
   */
  get kubeconfigPath(): string {
    return join(this.o.dir, "in-cluster.kubeconfig");
  }

  /** KUBERNETES_SERVICE_HOST/PORT, as the kubelet sets them in every container. */
  serviceEnv(): Record<string, string> {
    return {
      KUBERNETES_SERVICE_HOST: this.o.apiServer.host,
      KUBERNETES_SERVICE_PORT: String(this.o.apiServer.port),
    };
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private apiAccessVolume(): VolumeSpec {
    return {
      name: API_ACCESS,
      projected: {
        sources: [
          { serviceAccountToken: { expirationSeconds: API_TOKEN_SECONDS, path: "token" } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          { downwardAPI: { items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }] } },
        ],
      },
    };
  }

  private async setUpVolume(vol: VolumeSpec): Promise<void> {
    if (vol.hostPath) {
      const path = this.o.nodePath(vol.hostPath.path);
      await setUpHostPath(vol.name, path, vol.hostPath.type ?? "");
      this.hostPaths.set(vol.name, path);
      return;
    }
    const dir = join(this.o.dir, "volumes", vol.name);
    await mkdir(dir, { recursive: true });
    this.hostPaths.set(vol.name, dir);
    if (vol.emptyDir) return;
    const sources: ProjectionSource[] = vol.configMap
      ? [{ configMap: vol.configMap }]
      : (vol.projected?.sources ?? []);
    if (!vol.configMap && !vol.projected)
      throw new Error(
        `volume ${vol.name}: only hostPath, emptyDir, configMap and projected volumes are supported here`,
      );
    for (const s of sources) {
      if (s.serviceAccountToken) await this.token(dir, s.serviceAccountToken);
      if (s.configMap) await this.configMap(dir, s.configMap);
      for (const item of s.downwardAPI?.items ?? []) {
        await atomicWrite(join(dir, item.path), fieldValue(this.o.pod, item.fieldRef?.fieldPath ?? ""));
      }
    }
  }

  /** TokenRequest bound to this pod (so TokenReview names it), written now and before it expires. */
  private async token(dir: string, t: NonNullable<ProjectionSource["serviceAccountToken"]>): Promise<void> {
    const { pod } = this.o;
    const ns = pod.metadata.namespace ?? "default";
    const sa = pod.spec?.serviceAccountName ?? "default";
    const answer = await this.o.client.request<{ status: { token: string; expirationTimestamp: string } }>(
      "POST",
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          ...(t.audience ? { audiences: [t.audience] } : {}),
          ...(t.expirationSeconds ? { expirationSeconds: t.expirationSeconds } : {}),
          boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod.metadata.name, uid: pod.metadata.uid },
        },
      },
    );
    await atomicWrite(join(dir, t.path), answer.status.token);
    const lifetime = Date.parse(answer.status.expirationTimestamp) - Date.now();
    this.later(Math.max(RETRY_MS, lifetime * TOKEN_REFRESH_FRACTION), () => this.token(dir, t));
  }

  private async configMap(dir: string, ref: NonNullable<ProjectionSource["configMap"]>): Promise<void> {
    const ns = this.o.pod.metadata.namespace ?? "default";
    const cm = await this.o.client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/configmaps/${ref.name}`,
    );
    if (!cm && !ref.optional) throw new VolumeNotReady(`configmap "${ref.name}" not found in ${ns}`);
    const data = cm?.data ?? {};
    const items = ref.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      const value = data[item.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new VolumeNotReady(`configmap "${ref.name}" in ${ns} has no key ${item.key}`);
      }
      await atomicWrite(join(dir, item.path), value);
    }
    this.later(CONFIGMAP_SYNC_MS, () => this.configMap(dir, ref));
  }

  /** Runs `refresh` after `ms`; a failure is logged and retried soon, the files on disk stay. */
  private later(ms: number, refresh: () => Promise<void>): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      refresh().catch((err: Error) => {
        this.o.logger.warn({ pod: podKey(this.o.pod), err: err.message }, "volume refresh failed; retrying");
        this.later(RETRY_MS, refresh);
      });
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private async writeInClusterKubeconfig(): Promise<void> {
    const sa = this.hostPaths.get(API_ACCESS)!;
    const { host, port } = this.o.apiServer;
    const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
    const text = [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: in-cluster",
      `  cluster: { server: "${server}", certificate-authority: "${join(sa, "ca.crt")}" }`,
      "users:",
      "- name: in-cluster",
      `  user: { auth-provider: { name: tokenFile, config: { tokenFile: "${join(sa, "token")}" } } }`,
      "contexts:",
      `- name: in-cluster\n  context: { cluster: in-cluster, user: in-cluster, namespace: "${this.o.pod.metadata.namespace ?? "default"}" }`,
      "current-context: in-cluster",
      "",
    ].join("\n");
    await atomicWrite(this.kubeconfigPath, text);
  }
}

const API_ACCESS = "kube-api-access";

/**
 * A hostPath's `type` as the kubelet checks it: the *OrCreate kinds are made when missing (a file
 * or a folder), every other kind must exist already; "" (the default) is not checked, and the
 * folder is made as the chart's usual DirectoryOrCreate would, since a missing node folder here is
 * only the node being new.
 */
async function setUpHostPath(volume: string, path: string, type: string): Promise<void> {
  switch (type) {
    case "FileOrCreate":
      await mkdir(dirname(path), { recursive: true });
      await (await open(path, "a")).close();
      return;
    case "":
    case "DirectoryOrCreate":
    case "Directory":
      await mkdir(path, { recursive: true });
      return;
    case "File":
    case "Socket":
    case "CharDevice":
    case "BlockDevice":
      return;
    default:
      throw new Error(`volume ${volume}: hostPath type "${type}" is not a Kubernetes hostPath type`);
  }
}

/** A downward-API field of the pod (env `fieldRef` and downwardAPI volumes). */
export function fieldValue(pod: Pod, fieldPath: string, podIp?: string, hostIp?: string): string {
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace ?? "default";
    case "metadata.uid":
      return pod.metadata.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    case "status.podIP":
      return podIp ?? "";
    case "status.hostIP":
      return hostIp ?? "";
    default: {
      const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath);
      if (label) return pod.metadata.labels?.[label[1]!] ?? "";
      throw new Error(`fieldRef ${fieldPath} is not supported by this kubelet`);
    }
  }
}

export function podKey(pod: Pod): string {
  return `${pod.metadata.namespace ?? "default"}/${pod.metadata.name}`;
}

/** A reader (ztunnel re-reading its token) never sees half a file. */
async function atomicWrite(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}
