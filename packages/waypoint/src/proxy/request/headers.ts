// What the route makes of the headers: the request that goes upstream (rewrites, header edits, XFCC,
// hop-by-hop headers removed, an upgrade asked for again on our own connection) and the response
// that goes back (hop-by-hop removed, response header edits, CORS).

import type { IncomingHttpHeaders } from "node:http";
import type { HeaderOps, L7Request } from "../../model/request.js";
import type { AttemptRequest } from "./attempt.js";
import { connectionTokens } from "./build.js";
import type { StreamInfo } from "./exchange.js";
import type { ForwardPlan } from "./route.js";

/** Connection-specific headers (RFC 9110 §7.6.1), plus HTTP2-Settings (RFC 9113 §3.2.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "http2-settings",
]);

export function upstreamRequest(
  l7: L7Request,
  plan: ForwardPlan,
  info: StreamInfo,
  upgrade: string[],
): AttemptRequest {
  // Headers the client named in Connection are hop-by-hop too.
  const named = connectionTokens({ connection: l7.headers.connection });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(l7.headers)) if (!HOP_BY_HOP.has(k) && !named.has(k)) headers[k] = v;
  // `TE: trailers` is the one TE value HTTP/2 allows, and gRPC servers insist on it.
  if (l7.headers.te?.toLowerCase() === "trailers") headers.te = "trailers";
  const authority = plan.rewrite?.authority ?? l7.authority;
  headers.host = authority;
  // The downstream scheme, whatever the client claimed: "http" over HBONE, "https" where an ingress
  // gateway terminated TLS (Envoy's edge sets it from the connection too).
  headers["x-forwarded-proto"] = l7.scheme;
  // Envoy passes the verified peer identity upstream in XFCC (Istio: SANITIZE_SET).
  headers["x-forwarded-client-cert"] = `URI=${info.sourcePrincipal}`;
  for (const ops of plan.requestHeaders ?? []) applyOps(headers, ops);
  const finalAuthority = headers.host ?? authority;
  delete headers.host;
  return {
    method: l7.method,
    path: plan.rewrite?.path ?? l7.path,
    authority: finalAuthority,
    headers,
    upgrade,
  };
}

/** The upstream's headers as the client gets them; `switching` keeps Upgrade/Connection of a 101. */
export function downstreamHeaders(
  headers: IncomingHttpHeaders,
  plan: ForwardPlan,
  switching = false,
): Record<string, string | string[]> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k.startsWith(":") || k === "set-cookie") continue;
    if (HOP_BY_HOP.has(k) && !(switching && (k === "upgrade" || k === "connection"))) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  const ops = plan.responseHeaders ?? [];
  // Set-Cookie values cannot be joined into one line (RFC 6265 §3): kept apart unless a rule edits them.
  const cookies = headers["set-cookie"];
  const edited = ops.some((o) =>
    [...Object.keys({ ...o.set, ...o.add }), ...(o.remove ?? [])].some(
      (k) => k.toLowerCase() === "set-cookie",
    ),
  );
  if (cookies && edited) out["set-cookie"] = cookies.join(", ");
  for (const op of ops) applyOps(out, op);
  Object.assign(out, plan.corsHeaders ?? {});
  return cookies && !edited ? { ...out, "set-cookie": cookies } : out;
}

export function applyOps(headers: Record<string, string>, ops: HeaderOps): void {
  for (const [k, v] of Object.entries(ops.set ?? {})) headers[k.toLowerCase()] = v;
  for (const [k, v] of Object.entries(ops.add ?? {})) {
    const key = k.toLowerCase();
    headers[key] = headers[key] ? `${headers[key]}, ${v}` : v;
  }
  for (const k of ops.remove ?? []) delete headers[k.toLowerCase()];
}
