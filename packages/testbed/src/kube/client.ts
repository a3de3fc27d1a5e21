// The writes the cluster harness and its kubelets make (server-side apply, pods/status, node
// status, TokenRequest, delete), authenticated as the kubeconfig says, through the HTTP stack the
// reflectors use (`@ambient/kube/api`). Kinds are found by discovery, as kubectl does, so DIR may hold any served kind.

import { ApiError, apiStatusOf, getJson, type KubeConfig, requestJson } from "@ambient/kube/api";

export interface ResourceInfo {
  /** `/api/v1` or `/apis/<group>/<version>`. */
  base: string;
  plural: string;
  namespaced: boolean;
}

interface ObjectRef {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [field: string]: unknown };
  [field: string]: unknown;
}

export class KubeClient {
  private readonly discovery = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(readonly kc: KubeConfig) {}

  /** One call; `ApiError` (code AMB_KUBE_API, with the status) on a non-2xx answer. */
  request<T>(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    body?: unknown,
    opts: { query?: Record<string, string>; contentType?: string } = {},
  ): Promise<T> {
    return method === "GET"
      ? getJson<T>(this.kc, path, opts.query)
      : requestJson<T>(this.kc, method, path, body, opts);
  }

  /** The object at `path`, or undefined when it does not exist. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>("GET", path);
    } catch (err) {
      if (apiStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Server-side apply with `fieldManager`, taking over conflicting fields as `kubectl apply --server-side --force-conflicts`. */
  async apply<T = Record<string, unknown>>(obj: ObjectRef, fieldManager: string): Promise<T> {
    return this.request<T>("PATCH", await this.objectPath(obj), obj, {
      query: { fieldManager, force: "true" },
      // JSON is YAML: the apply content type takes either.
      contentType: "application/apply-patch+yaml",
    });
  }

  /** A JSON merge patch, on the object or one of its subresources (`status`). */
  async mergePatch(path: string, patch: unknown): Promise<void> {
    await this.request("PATCH", path, patch, { contentType: "application/merge-patch+json" });
  }

  /** Deletes; already gone is what was wanted. */
  async delete(path: string): Promise<void> {
    try {
      await this.request("DELETE", path);
    } catch (err) {
      if (apiStatusOf(err) !== 404) throw err;
    }
  }

  /** `/api/v1/namespaces/<ns>/pods/<name>` for any served kind (discovery, cached per group-version). */
  async objectPath(obj: ObjectRef): Promise<string> {
    const info = await this.resource(obj.apiVersion, obj.kind);
    const ns = obj.metadata.namespace ?? "default";
    return `${info.base}${info.namespaced ? `/namespaces/${ns}` : ""}/${info.plural}/${obj.metadata.name}`;
  }

  async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    let byKind = this.discovery.get(apiVersion);
    if (!byKind) {
      byKind = this.discover(apiVersion);
      this.discovery.set(apiVersion, byKind);
      // A kind served later (a CRD applied meanwhile) is found by asking again.
      byKind.catch(() => this.discovery.delete(apiVersion));
    }
    const info = (await byKind).get(kind);
    if (!info) {
      this.discovery.delete(apiVersion);
      throw new ApiError(
        404,
        `no kind ${kind} is served at ${apiVersion} (install its CustomResourceDefinition first)`,
      );
    }
    return info;
  }

  private async discover(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const list = await this.request<{
      resources?: { name: string; kind: string; namespaced: boolean }[];
    }>("GET", base);
    const out = new Map<string, ResourceInfo>();
    for (const r of list.resources ?? []) {
      if (r.name.includes("/")) continue;
      out.set(r.kind, { base, plural: r.name, namespaced: r.namespaced });
    }
    return out;
  }
}

/** `/api/v1/namespaces/<ns>/pods/<name>`. */
export function podPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${namespace}/pods/${name}`;
}
