// The resource verbs: list (incl. watch, tables, pagination), get, create, replace, patch, delete
// and deletecollection, plus the subresources (status, log, proxy, token) and TokenReview. Each
// takes a parsed request and answers; errors are thrown and become a Status in router.ts.

import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import { ApiErrorCode, apiError, badRequest } from "./errors.js";
import { type GarbageCollector, parsePropagationPolicy } from "./gc.js";
import { isBuiltin, now, type ObjectService } from "./objects.js";
import { patchKindOf } from "./patch.js";
import { logOptions, type PodBackends, serveLog, serveProxy } from "./pod-backends.js";
import { decodeProtobufBody } from "./protobuf.js";
import { groupVersion, type ResourceType, storageKey } from "./resources.js";
import { SCALABLE_KINDS, scaleOf, writeScale } from "./scale.js";
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from "./selectors.js";
import type { KubeObject } from "./store.js";
import { toTable, wantsTable } from "./table.js";
import type { Lookup, TokenIssuer } from "./tokens.js";
import type { WatchHub } from "./watch.js";

export interface ResourceRequest {
  method: string;
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  /** `status`, `log`, `proxy`, `token`; for proxy, `rest` is the path after it. */
  subresource: string | undefined;
  rest: string;
  query: URLSearchParams;
  req: IncomingMessage;
  res: ServerResponse;
  body: () => Promise<unknown>;
  userAgent: string;
}

export interface HandlerContext {
  objects: ObjectService;
  gc: GarbageCollector;
  watches: WatchHub;
  tokens: TokenIssuer;
  backends: PodBackends;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Bodies are JSON, YAML for apply patches (helm and kubectl send either), or kubectl's protobuf TokenRequest. */
export function parseBody(body: Buffer, contentType: string | undefined): unknown {
  if (/protobuf/.test(contentType ?? "")) return decodeProtobufBody(body);
  if (/cbor/.test(contentType ?? "")) {
    throw apiError(
      ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
      "CBOR is not supported by this test API server; send application/json",
    );
  }
  const text = body.toString("utf8");
  if (text.trim() === "") return undefined;
  const yaml = /yaml/.test(contentType ?? "");
  try {
    return yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid ${yaml ? "YAML" : "JSON"}: ${(err as Error).message}`);
  }
}

export function lookupIn(objects: ObjectService): Lookup {
  return (kind, ns, name) => {
    const type = objects.registry.byKind("v1", kind);
    return type ? objects.store.get(storageKey(type), ns, name) : undefined;
  };
}

function selectorOf(r: ResourceRequest): (o: KubeObject) => boolean {
  const labels = parseLabelSelector(r.query.get("labelSelector"));
  const fields = parseFieldSelector(r.query.get("fieldSelector"), r.type);
  return (o) => matchesLabels(labels, o.metadata.labels) && matchesFields(fields, o);
}

function writeOptions(r: ResourceRequest, subresource?: "status") {
  if (r.query.has("dryRun")) throw badRequest("dryRun is not supported by this test API server");
  const fieldManager = r.query.get("fieldManager") ?? r.userAgent.split("/")[0] ?? "unknown";
  return { fieldManager, force: r.query.get("force") === "true", ...(subresource ? { subresource } : {}) };
}

export async function handleResource(ctx: HandlerContext, r: ResourceRequest): Promise<void> {
  const { objects } = ctx;
  const { type, namespace: ns, name, res } = r;
  if (type.kind === "TokenReview") {
    if (r.method !== "POST" || name)
      throw apiError(ApiErrorCode.METHOD_NOT_ALLOWED, "tokenreviews only supports create");
    return json(res, 201, await ctx.tokens.review(await r.body(), lookupIn(objects)));
  }
  if (name === undefined) return handleCollection(ctx, r);
  const sub = r.subresource;
  if (sub === "status" && type.status) {
    if (r.method === "GET") return json(res, 200, objects.get(type, ns, name));
    if (r.method === "PUT")
      return json(res, 200, objects.replace(type, ns, name, await r.body(), writeOptions(r, "status")));
    if (r.method === "PATCH") {
      const kind = patchKindOf(r.req.headers["content-type"], isBuiltin(type));
      return json(res, 200, objects.patch(type, ns, name, kind, await r.body(), writeOptions(r, "status")));
    }
  }
  if (sub === "log" && type.kind === "Pod" && r.method === "GET") {
    const pod = objects.get(type, ns, name);
    return serveLog(ctx.backends, pod, logOptions(r.query, pod), res);
  }
  if (sub === "proxy" && type.kind === "Pod") {
    const [podName, port] = name.split(":");
    return serveProxy(ctx.backends, objects.get(type, ns, podName!), port, r.rest || "/", r.req, res);
  }
  if (sub === "scale" && SCALABLE_KINDS.includes(type.kind)) {
    if (r.method === "GET") return json(res, 200, scaleOf(objects.get(type, ns, name)));
    if (r.method === "PUT")
      return json(res, 200, writeScale(objects, type, ns, name, { put: await r.body() }));
    if (r.method === "PATCH") {
      const kind = patchKindOf(r.req.headers["content-type"], true);
      if (kind === "apply")
        throw badRequest("apply patches on scale are not supported by this test API server");
      return json(res, 200, writeScale(objects, type, ns, name, { patch: await r.body(), kind }));
    }
  }
  if (sub === "binding" && type.kind === "Pod" && r.method === "POST") {
    return json(res, 201, bindPod(objects, type, ns, name, await r.body()));
  }
  if (sub === "token" && type.kind === "ServiceAccount" && r.method === "POST") {
    const sa = objects.get(type, ns, name);
    return json(res, 201, await ctx.tokens.request(sa, await r.body(), lookupIn(objects)));
  }
  if (sub !== undefined)
    throw apiError(
      ApiErrorCode.NOT_FOUND,
      `the server could not find the requested resource (${r.method} ${type.resource}/${sub})`,
    );

  switch (r.method) {
    case "GET":
      return json(res, 200, maybeTable(r, [objects.get(type, ns, name)], ""));
    case "PUT":
      return json(res, 200, objects.replace(type, ns, name, await r.body(), writeOptions(r)));
    case "PATCH": {
      const kind = patchKindOf(r.req.headers["content-type"], isBuiltin(type));
      const exists =
        objects.store.get(storageKey(type), type.namespaced ? ns : undefined, name) !== undefined;
      const out = objects.patch(type, ns, name, kind, await r.body(), writeOptions(r));
      return json(res, exists ? 200 : 201, out);
    }
    case "DELETE": {
      const body = ((await r.body()) ?? {}) as {
        propagationPolicy?: string;
        gracePeriodSeconds?: number;
        preconditions?: { uid?: string; resourceVersion?: string };
      };
      const policy = parsePropagationPolicy(r.query.get("propagationPolicy") ?? body.propagationPolicy);
      const grace = parseGracePeriod(r.query.get("gracePeriodSeconds") ?? body.gracePeriodSeconds);
      if (policy === "Orphan") ctx.gc.orphanDependents(objects.get(type, ns, name));
      if (policy === "Foreground") return json(res, 200, ctx.gc.deleteForeground(type, ns, name));
      const gone = objects.delete(type, ns, name, body.preconditions ?? {}, grace);
      return json(res, 200, gone);
    }
    default:
      throw apiError(
        ApiErrorCode.METHOD_NOT_ALLOWED,
        `${r.method} is not supported on ${type.resource}/${name}`,
      );
  }
}

async function handleCollection(ctx: HandlerContext, r: ResourceRequest): Promise<void> {
  const { objects } = ctx;
  const { type, namespace: ns, res } = r;
  switch (r.method) {
    case "GET": {
      const matches = selectorOf(r);
      if (r.query.get("watch") === "1" || r.query.get("watch") === "true") {
        const timeout = r.query.get("timeoutSeconds");
        const table = wantsTable(r.req.headers.accept);
        ctx.watches.serve(
          {
            type,
            namespace: ns,
            matches,
            resourceVersion: r.query.get("resourceVersion") ?? undefined,
            allowBookmarks: r.query.get("allowWatchBookmarks") === "true",
            sendInitialEvents: r.query.get("sendInitialEvents") === "true",
            timeoutSeconds: timeout === null ? undefined : Number(timeout),
            encode: (obj) =>
              table
                ? toTable(
                    type,
                    [obj],
                    obj.metadata.resourceVersion ?? "",
                    r.query.get("includeObject") ?? undefined,
                  )
                : obj,
          },
          res,
        );
        return;
      }
      const rv = String(objects.store.currentRv());
      const all = objects.store.scan(storageKey(type), ns).filter(matches);
      const { items: stored, next } = page(all, r.query);
      const items = stored.map((o) => objects.atVersion(type, structuredClone(o) as KubeObject));
      const listed = maybeTable(r, items, rv, next);
      return json(res, 200, listed);
    }
    case "POST":
      return json(res, 201, objects.create(type, ns, await r.body(), writeOptions(r)));
    case "DELETE": {
      const matches = selectorOf(r);
      const gone = objects.store
        .list(storageKey(type), ns)
        .filter(matches)
        .map((o) => objects.delete(type, o.metadata.namespace, o.metadata.name!));
      return json(res, 200, {
        kind: `${type.kind}List`,
        apiVersion: groupVersion(type),
        metadata: {},
        items: gone,
      });
    }
    default:
      throw apiError(ApiErrorCode.METHOD_NOT_ALLOWED, `${r.method} is not supported on ${type.resource}`);
  }
}

function parseGracePeriod(value: unknown): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n))
    throw badRequest(`gracePeriodSeconds: Invalid value: "${String(value)}": must be an integer`);
  return n;
}

/**
 * POST pods/NAME/binding, as the scheduler binds: sets spec.nodeName once (a bound pod answers
 * 409, as kube-apiserver's "pod x is already assigned to node y") and PodScheduled=True.
 */
function bindPod(
  objects: ObjectService,
  type: ResourceType,
  ns: string | undefined,
  name: string,
  body: unknown,
): unknown {
  const target = (body as { target?: { kind?: string; name?: string } } | undefined)?.target;
  if (!target?.name || (target.kind !== undefined && target.kind !== "Node")) {
    throw apiError(ApiErrorCode.INVALID, `Binding "${name}" is invalid: target: Required value: a Node name`);
  }
  const pod = objects.get(type, ns, name);
  const spec = (pod.spec ?? {}) as { nodeName?: string };
  if (spec.nodeName) {
    throw apiError(ApiErrorCode.CONFLICT, `pod ${name} is already assigned to node "${spec.nodeName}"`);
  }
  if (pod.metadata.deletionTimestamp) {
    throw apiError(ApiErrorCode.CONFLICT, `pod ${name} is being deleted, cannot be assigned to a host`);
  }
  objects.patch(
    type,
    ns,
    name,
    "merge",
    { spec: { nodeName: target.name } },
    { fieldManager: "kube-scheduler" },
  );
  const conditions = (
    (pod.status as { conditions?: { type: string }[] } | undefined)?.conditions ?? []
  ).filter((c) => c.type !== "PodScheduled");
  conditions.push({ type: "PodScheduled", status: "True", lastTransitionTime: now() } as { type: string });
  objects.patch(type, ns, name, "merge", { status: { conditions } }, { subresource: "status" });
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 };
}

/**
 * `limit` and `continue`: the token is the offset into the ordered list. Unlike etcd we keep no
 * snapshot, so a continued list sees later writes (see README).
 */
function page<T>(items: readonly T[], query: URLSearchParams): { items: T[]; next?: string } {
  const limit = Number(query.get("limit") ?? 0);
  let start = 0;
  const token = query.get("continue");
  if (token) {
    const parsed = Number(Buffer.from(token, "base64url").toString());
    if (!Number.isInteger(parsed) || parsed < 0) throw badRequest(`invalid continue token "${token}"`);
    start = parsed;
  }
  if (!(limit > 0)) return { items: items.slice(start) };
  const end = start + limit;
  return end < items.length
    ? { items: items.slice(start, end), next: Buffer.from(String(end)).toString("base64url") }
    : { items: items.slice(start) };
}

function maybeTable(r: ResourceRequest, items: KubeObject[], rv: string, next?: string): unknown {
  if (wantsTable(r.req.headers.accept)) {
    const table = toTable(r.type, items, rv, r.query.get("includeObject") ?? undefined) as {
      metadata: Record<string, string>;
    };
    if (next) table.metadata.continue = next;
    return table;
  }
  if (r.name !== undefined) return items[0];
  return {
    kind: `${r.type.kind}List`,
    apiVersion: groupVersion(r.type),
    metadata: { resourceVersion: rv, ...(next ? { continue: next } : {}) },
    items,
  };
}
