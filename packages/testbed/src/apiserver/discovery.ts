// Discovery as kubectl and helm read it: /version, /api, /apis and one legacy APIResourceList per
// group-version (aggregated discovery is optional: a plain JSON answer makes clients fall back),
// and /openapi/v3 with each path's PATCH declaring `fieldValidation`, which is how kubectl 1.35
// decides the server validates fields itself (`--validate=strict` then needs no client schemas).

import { createHash } from "node:crypto";
import type { ResourceRegistry, ResourceType } from "./resources.js";

export const SERVER_VERSION = {
  major: "1",
  minor: "35",
  gitVersion: "v1.35.0-ambient-testbed",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.25.0",
  compiler: "gc",
  platform: "linux/amd64",
};

export function apiVersions(serverAddress: string): unknown {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function apiGroup(name: string, versions: string[]): unknown {
  const entries = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: entries, preferredVersion: entries[0] };
}

/**
 * Built-in groups first, then the CRDs' groups by name, as kube-aggregator orders them (every CRD
 * group has groupPriorityMinimum 1000, below the built-ins; equal priorities sort by group name).
 * kubectl resolves a name two groups serve by this order: `kubectl get gateway` is the Gateway
 * API's (gateway.networking.k8s.io), not Istio's (networking.istio.io), as on a cluster with both.
 */
export function apiGroupList(registry: ResourceRegistry): unknown {
  const crdGroups = new Set(
    registry
      .all()
      .filter((t) => t.crd)
      .map((t) => t.group),
  );
  const entries = [...registry.groups()].filter(([g]) => g !== "");
  const builtins = entries.filter(([g]) => !crdGroups.has(g));
  const crds = entries.filter(([g]) => crdGroups.has(g)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const groups = [...builtins, ...crds].map(([g, vs]) => apiGroup(g, vs));
  return { kind: "APIGroupList", apiVersion: "v1", groups };
}

export function apiGroupOf(registry: ResourceRegistry, group: string): unknown | undefined {
  const versions = registry.groups().get(group);
  return versions
    ? { kind: "APIGroup", apiVersion: "v1", ...(apiGroup(group, versions) as object) }
    : undefined;
}

const SUBRESOURCE_VERBS = ["get", "patch", "update"];

export function apiResourceList(
  registry: ResourceRegistry,
  group: string,
  version: string,
): unknown | undefined {
  const types = registry.all().filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources: unknown[] = [];
  for (const t of types) {
    resources.push({
      name: t.resource,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs,
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length ? { categories: t.categories } : {}),
    });
    const sub = (name: string, kind: string, verbs: string[], gv?: { group: string; version: string }) =>
      resources.push({
        name: `${t.resource}/${name}`,
        singularName: "",
        namespaced: t.namespaced,
        kind,
        verbs,
        ...(gv ?? {}),
      });
    if (t.status) sub("status", t.kind, SUBRESOURCE_VERBS);
    if (t.kind === "Pod" && t.group === "") {
      sub("log", "Pod", ["get"]);
      sub("proxy", "PodProxyOptions", ["create", "delete", "get", "patch", "update"]);
    }
    if (t.kind === "ServiceAccount" && t.group === "") {
      sub("token", "TokenRequest", ["create"], { group: "authentication.k8s.io", version: "v1" });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group === "" ? version : `${group}/${version}`,
    resources,
  };
}

/** `api/v1` or `apis/<group>/<version>`: the keys of /openapi/v3's path index. */
function openApiPath(t: Pick<ResourceType, "group" | "version">): string {
  return t.group === "" ? `api/${t.version}` : `apis/${t.group}/${t.version}`;
}

export function openApiIndex(registry: ResourceRegistry): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  const seen = new Set(registry.all().map(openApiPath));
  for (const p of [...seen].sort()) {
    const hash = createHash("sha512")
      .update(JSON.stringify(openApiDocument(registry, p)))
      .digest("hex")
      .slice(0, 64);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash.toUpperCase()}` };
  }
  return { paths };
}

const PATCH_PARAMETERS = ["dryRun", "fieldManager", "fieldValidation", "force"].map((name) => ({
  name,
  in: "query",
  schema: { type: name === "force" ? "boolean" : "string", uniqueItems: true },
}));

/**
 * One group-version's document: every kind with an open schema (no client-side field checks)
 * and the operations that tell kubectl the server takes `fieldValidation`.
 */
export function openApiDocument(registry: ResourceRegistry, path: string): unknown | undefined {
  const types = registry.all().filter((t) => openApiPath(t) === path);
  if (types.length === 0) return undefined;
  const schemas: Record<string, unknown> = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    },
  };
  const paths: Record<string, unknown> = {};
  for (const t of types) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    schemas[schemaName(t)] = {
      type: "object",
      "x-kubernetes-group-version-kind": [gvk],
      "x-kubernetes-preserve-unknown-fields": true,
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        metadata: {
          allOf: [{ $ref: "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" }],
          default: {},
        },
      },
    };
    const base = `/${path}${t.namespaced ? "/namespaces/{namespace}" : ""}/${t.resource}`;
    const op = (action: string) => ({
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": gvk,
      parameters: PATCH_PARAMETERS,
      responses: { "200": { description: "OK" } },
    });
    paths[base] = { post: op("post"), get: op("list") };
    paths[`${base}/{name}`] = { get: op("get"), put: op("put"), patch: op("patch"), delete: op("delete") };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: SERVER_VERSION.gitVersion },
    paths,
    components: { schemas },
  };
}

function schemaName(t: ResourceType): string {
  if (t.crd) return `${t.group.split(".").reverse().join(".")}.${t.version}.${t.kind}`;
  const group = t.group === "" ? "core" : t.group.replace(/\.k8s\.io$/, "");
  return `io.k8s.api.${group}.${t.version}.${t.kind}`;
}
