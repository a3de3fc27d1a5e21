// Server-side apply (PATCH with `application/apply-patch+yaml`): the object we want, sent whole; the
// API server merges it by field ownership. A 409 is a conflict with another field manager, turned
// into a typed error naming each field and who owns it, so a caller can say exactly what to fix.

import { HttpMethod, type KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fetch } from "undici";
import { ApiError, type ResourceRef, resourcePath } from "./http.js";

// An apply answers in milliseconds; client-go's default request timeout is 32 s.
const APPLY_TIMEOUT_MS = 30_000;

export interface ApplyOptions {
  /** Who owns the fields this apply sets (`managedFields[].manager`). */
  fieldManager: string;
  /** Take over fields another manager owns instead of failing with a conflict (controllers do). */
  force?: boolean;
  /** `status`: apply to the status subresource (a controller's conditions). */
  subresource?: "status";
}

export interface FieldConflict {
  /** The manager that owns the field now. */
  manager: string;
  /** The field, as the API server spells it (`.spec.listeners`). */
  field: string;
}

/** The API server refused an apply: `conflicts` lists each field another manager owns with another value. */
export class ApplyConflictError extends Error {
  readonly code = "AMB_KUBE_APPLY_CONFLICT";
  readonly status = 409;
  constructor(
    readonly path: string,
    readonly conflicts: readonly FieldConflict[],
    message: string,
  ) {
    super(
      conflicts.length > 0
        ? `${conflicts.map((c) => `${c.field} is owned by "${c.manager}"`).join("; ")}`
        : message,
    );
  }
}

/** The path of one object: `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>`. */
export function objectPath(r: ResourceRef, name: string, namespace?: string): string {
  return `${resourcePath(r, namespace)}/${encodeURIComponent(name)}`;
}

/**
 * Applies `object` (apiVersion, kind, metadata.name and, if namespaced, metadata.namespace set) and
 * resolves with what the API server holds afterwards. ApiError on a non-2xx other than a conflict.
 */
export async function serverSideApply<T = Record<string, unknown>>(
  kc: KubeConfig,
  resource: ResourceRef,
  object: { metadata: { name: string; namespace?: string } },
  opts: ApplyOptions,
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ApiError(0, "the kubeconfig names no current cluster");
  const path = `${objectPath(resource, object.metadata.name, object.metadata.namespace)}${opts.subresource ? `/${opts.subresource}` : ""}`;
  const url = new URL(cluster.server + path);
  url.searchParams.set("fieldManager", opts.fieldManager);
  if (opts.force) url.searchParams.set("force", "true");
  const ctx = new RequestContext(url.toString(), HttpMethod.PATCH);
  await kc.applySecurityAuthentication(ctx);
  const res = await fetch(url, {
    method: "PATCH",
    headers: {
      ...ctx.getHeaders(),
      accept: "application/json",
      // JSON is YAML: the API server takes our JSON under the apply content type.
      "content-type": "application/apply-patch+yaml",
    },
    body: JSON.stringify(object),
    dispatcher: ctx.getDispatcher() as never,
    signal: AbortSignal.timeout(APPLY_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.ok) return JSON.parse(text) as T;
  const status = parseStatus(text);
  const message = status?.message ?? text.slice(0, 300);
  if (res.status === 409 && status?.reason === "Conflict") {
    const conflicts = (status.details?.causes ?? [])
      .filter((c) => c.reason === "FieldManagerConflict" && c.field)
      .map((c) => ({ manager: managerOf(c.message), field: c.field! }));
    throw new ApplyConflictError(path, conflicts, message);
  }
  throw new ApiError(res.status, `apply ${path}: ${res.status} ${message}`);
}

interface Status {
  message?: string;
  reason?: string;
  details?: { causes?: { reason?: string; message?: string; field?: string }[] };
}

function parseStatus(text: string): Status | undefined {
  try {
    return JSON.parse(text) as Status;
  } catch {
    return undefined;
  }
}

/** kube-apiserver's cause message: `conflict with "kubectl-client-side-apply" using apps/v1`. */
function managerOf(message: string | undefined): string {
  return /conflict with "([^"]*)"/.exec(message ?? "")?.[1] ?? "another field manager";
}
