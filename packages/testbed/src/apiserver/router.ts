// One request's way through the server: authenticate (client certificate, the admin bearer
// token, or a service-account JWT for the API audience) → injected faults → discovery, OpenAPI
// and issuer documents, or a resource path parsed into kind, namespace, name and subresource.
// Every error leaves through `toStatus`, the one mapping to a Status answer.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { userFromCertificate } from "./certs.js";
import {
  apiGroupList,
  apiGroupOf,
  apiResourceList,
  apiVersions,
  openApiDocument,
  openApiIndex,
  SERVER_VERSION,
} from "./discovery.js";
import { ApiErrorCode, apiError, toStatus } from "./errors.js";
import type { Faults } from "./faults.js";
import { type HandlerContext, handleResource, json, lookupIn, parseBody } from "./handlers.js";
import { encodeOpenApiV2Document } from "./protobuf.js";
import { ISSUER } from "./tokens.js";

/** kube-apiserver refuses request bodies over 3 MiB (MaxRequestBodyBytes). */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  user: string;
  contentType?: string;
  status?: number;
}

export interface RouterContext extends HandlerContext {
  faults: Faults;
  adminToken: string;
  serverAddress: () => string;
  /** Every request, for tests that check what a client sent (helm's apply, kubectl's patch type). */
  requests: RequestRecord[];
}

export async function route(ctx: RouterContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "https://apiserver");
  const method = req.method ?? "GET";
  const record: RequestRecord = { method, path: url.pathname, query: url.search, user: "" };
  if (req.headers["content-type"]) record.contentType = req.headers["content-type"];
  ctx.requests.push(record);
  res.on("finish", () => {
    record.status = res.statusCode;
  });
  try {
    if (["/healthz", "/livez", "/readyz"].includes(url.pathname)) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    if (url.pathname === "/.well-known/openid-configuration") {
      return json(res, 200, {
        issuer: ISSUER,
        jwks_uri: `${ctx.serverAddress()}/openid/v1/jwks`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["ES256"],
      });
    }
    if (url.pathname === "/openid/v1/jwks") return json(res, 200, await ctx.tokens.jwks());
    record.user = await authenticate(ctx, req);
    const watch = url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true";
    await ctx.faults.before(method, url.pathname, watch);
    await dispatch(ctx, req, res, url, method);
  } catch (err) {
    const status = toStatus(err);
    if (res.headersSent) res.destroy();
    else json(res, status.code, status);
  }
}

async function authenticate(ctx: RouterContext, req: IncomingMessage): Promise<string> {
  const socket = req.socket as TLSSocket;
  if (socket.authorized) {
    const peer = socket.getPeerCertificate();
    if (peer?.raw) return userFromCertificate(peer.raw).username;
  }
  const header = req.headers.authorization ?? "";
  const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
  if (!token)
    throw apiError(ApiErrorCode.UNAUTHORIZED, "Unauthorized: no client certificate or bearer token");
  if (token === ctx.adminToken) return "admin";
  const { user } = await ctx.tokens.verify(token, [], lookupIn(ctx.objects));
  return user.username;
}

async function dispatch(
  ctx: RouterContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  method: string,
): Promise<void> {
  const registry = ctx.objects.registry;
  const segs = url.pathname.split("/").filter((s) => s !== "");
  const notFound = () =>
    apiError(
      ApiErrorCode.NOT_FOUND,
      `the server could not find the requested resource (${method} ${url.pathname})`,
    );
  if (url.pathname === "/version") return json(res, 200, SERVER_VERSION);
  if (url.pathname === "/api")
    return json(res, 200, apiVersions(ctx.serverAddress().replace(/^https:\/\//, "")));
  if (url.pathname === "/apis") return json(res, 200, apiGroupList(registry));
  if (url.pathname === "/openapi/v2") {
    if (/protobuf/.test(req.headers.accept ?? "")) {
      const doc = encodeOpenApiV2Document(SERVER_VERSION.gitVersion);
      res.writeHead(200, { "content-type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" });
      res.end(doc);
      return;
    }
    return json(res, 200, {
      swagger: "2.0",
      info: { title: "Kubernetes", version: SERVER_VERSION.gitVersion },
      paths: {},
      definitions: {},
    });
  }
  if (segs[0] === "openapi" && segs[1] === "v3") {
    const doc =
      segs.length === 2 ? openApiIndex(registry) : openApiDocument(registry, segs.slice(2).join("/"));
    if (!doc) throw notFound();
    return json(res, 200, doc);
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === "api" && segs.length >= 2) [group, version, rest] = ["", segs[1]!, segs.slice(2)];
  else if (segs[0] === "apis" && segs.length >= 2) {
    if (segs.length === 2) {
      const g = apiGroupOf(registry, segs[1]!);
      if (!g) throw notFound();
      return json(res, 200, g);
    }
    [group, version, rest] = [segs[1]!, segs[2]!, segs.slice(3)];
  } else throw notFound();
  if (rest.length === 0) {
    const list = apiResourceList(registry, group, version);
    if (!list) throw notFound();
    return json(res, 200, list);
  }

  // /namespaces/<ns>/<resource>/... is namespaced unless it is the Namespace object's own path.
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3 && registry.find(group, version, rest[2]!)?.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const type = registry.find(group, version, rest[0]!);
  if (!type || (type.namespaced && namespace === undefined && rest.length > 1)) throw notFound();
  const name = rest[1];
  const subresource = rest[2];
  const proxyRest =
    subresource === "proxy"
      ? `/${rest.slice(3).join("/")}${url.pathname.endsWith("/") && rest.length > 3 ? "/" : ""}`
      : "";
  let cached: Promise<unknown> | undefined;
  await handleResource(ctx, {
    method,
    type,
    namespace,
    name,
    subresource,
    rest: proxyRest + (subresource === "proxy" ? url.search : ""),
    query: url.searchParams,
    req,
    res,
    userAgent: req.headers["user-agent"] ?? "unknown",
    body: () => {
      cached ??= readBody(req).then((buf) => parseBody(buf, req.headers["content-type"]));
      return cached;
    },
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(apiError(ApiErrorCode.BAD_REQUEST, `the request body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
