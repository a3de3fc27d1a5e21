// Stage 1, build: the request as the L7 stages see it (model/request.ts), from an HTTP/1.1 or
// HTTP/2 request, plus the protocol facts later stages need — whether it asks to upgrade the
// connection (and to what), and whether it is a CONNECT the waypoint refuses.

import type { IncomingHttpHeaders } from "node:http";
import { SpiffeId } from "@ambient/core";
import type { L7Request } from "../../model/request.js";
import type { StreamInfo } from "./exchange.js";

/** What node:http and node:http2 requests both offer. */
export interface WireRequest {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  httpVersionMajor: number;
  /** HTTP/2 only. */
  authority?: string;
}

export interface BuiltRequest {
  l7: L7Request;
  /**
   * HTTP/1.1 `Connection: upgrade` with the protocols asked for (lowercase), h2c removed: Envoy
   * drops an h2c upgrade and serves the request as HTTP/1.1, and so do we — after a 101 for h2c the
   * client's HTTP/2 requests would flow as raw bytes, past every L7 policy. Empty: no upgrade.
   */
  upgrade: string[];
  /** CONNECT, or HTTP/2 extended CONNECT (a `:protocol` pseudo-header). */
  connect: boolean;
  /**
   * An upgrade request that also declares a body. Where the body ends and the new protocol starts
   * is ambiguous (node:http stops at the head), so it is refused with 400, as Kestrel does.
   */
  upgradeWithBody: boolean;
}

/**
 * An absolute-form request target ("GET http://host/path HTTP/1.1", what a client sends to a
 * forward proxy) as the origin-form path and the authority it names, as Envoy's codec reads it
 * (RFC 9112 3.2.2: the target's authority, not Host, names the resource). Kept as sent, every
 * `paths` rule and route match would see "http://host/admin" and a DENY for /admin not apply.
 */
function absoluteForm(url: string): { authority?: string; path: string } | undefined {
  const m = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(url);
  if (!m) return undefined;
  const authority = m[1]!.slice(m[1]!.lastIndexOf("@") + 1); // userinfo is not part of the host
  const rest = m[2]!;
  return { ...(authority ? { authority } : {}), path: rest.startsWith("/") ? rest : `/${rest}` };
}

/** The request head says a body follows (Transfer-Encoding, or a Content-Length above 0). */
export function declaresBody(headers: WireRequest["headers"]): boolean {
  return headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
}

export function buildRequest(req: WireRequest, info: StreamInfo): BuiltRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    // HTTP/2 pseudo-headers are the request line, not headers an L7 rule may match.
    if (v === undefined || k.startsWith(":")) continue;
    headers[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  const ns = SpiffeId.tryParse(info.sourcePrincipal)?.namespace;
  const method = req.method ?? "GET";
  const h2 = req.httpVersionMajor === 2;
  const absolute = method === "CONNECT" ? undefined : absoluteForm(req.url ?? "");
  const l7: L7Request = {
    method,
    scheme: info.tls ? "https" : "http",
    ...(info.tls ? { tls: info.tls } : {}),
    authority: (
      absolute?.authority ??
      req.headers.host ??
      req.authority ??
      info.destination.host
    ).toLowerCase(),
    path: absolute?.path ?? req.url ?? "/",
    headers,
    port: info.destination.port,
    protocol: (req.headers["content-type"] ?? "").startsWith("application/grpc")
      ? "grpc"
      : h2
        ? "h2"
        : "http/1.1",
    source: { ip: info.sourceIp, principal: info.sourcePrincipal, ...(ns ? { namespace: ns } : {}) },
    destination: info.destination,
  };
  const upgrade = h2 ? [] : upgradeTokens(req.headers);
  return {
    l7,
    upgrade,
    connect: method === "CONNECT" || req.headers[":protocol"] !== undefined,
    upgradeWithBody: upgrade.length > 0 && declaresBody(req.headers),
  };
}

/** The protocols an HTTP/1.1 request asks to switch to, when `Connection` names `upgrade`. */
export function upgradeTokens(headers: IncomingHttpHeaders): string[] {
  if (!connectionTokens(headers).has("upgrade")) return [];
  const upgrade = headers.upgrade;
  if (!upgrade) return [];
  return upgrade
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== "" && t !== "h2c");
}

/** The lowercase tokens of the Connection header (RFC 9110 §7.6.1). */
export function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(",") : (value ?? "");
  return new Set(
    text
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ""),
  );
}
