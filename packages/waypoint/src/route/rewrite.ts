// Where a request goes after routing changes its URL: `rewrite` (prefix or whole-path swap, RE2
// substitution with \N captures) before forwarding, and `redirect`, whose Location header is
// built the way Envoy's RedirectAction builds it from the request.

import RE2 from "re2";
import type { L7Request } from "../model/request.js";
import type { UriMatch } from "./match.js";

/** Splits "/a/b?x=1" into "/a/b" and "?x=1" (the query keeps its "?"). */
function splitQuery(path: string): { path: string; query: string } {
  const q = path.indexOf("?");
  return q === -1 ? { path, query: "" } : { path: path.slice(0, q), query: path.slice(q) };
}

/**
 * Envoy's prefix_rewrite. For a prefix match the matched prefix's length is swapped out (the
 * rest, query included, stays); for exact and regex matches the whole path is replaced and the
 * query kept. With no uri match Istio matches prefix "/", so only the leading "/" is swapped.
 */
export function rewritePrefix(path: string, uri: UriMatch | undefined, replacement: string): string {
  const m = uri?.match;
  if (m === undefined || m.kind === "present") return replacement + path.slice(1);
  if (m.kind === "prefix") return replacement + path.slice(m.value.length);
  return replacement + splitQuery(path).query;
}

export interface CompiledRegexRewrite {
  re: RE2;
  substitution: string;
}

export function compileRegexRewrite(match: string, substitution: string): CompiledRegexRewrite {
  return { re: new RE2(match, "gu"), substitution };
}

/**
 * Envoy's regex_rewrite: every non-overlapping match in the path (query untouched) is replaced
 * by the substitution, where \0..\9 name capture groups and \\ is a backslash (RE2 syntax, not
 * JavaScript's $1).
 */
export function rewriteRegex(path: string, rw: CompiledRegexRewrite): string {
  const { path: bare, query } = splitQuery(path);
  const re = rw.re;
  re.lastIndex = 0;
  let out = "";
  let last = 0;
  for (let m = re.exec(bare); m !== null; m = re.exec(bare)) {
    out += bare.slice(last, m.index) + substitute(rw.substitution, m);
    last = m.index + m[0].length;
    // An empty match would match again at the same place forever.
    if (m[0].length === 0) re.lastIndex = m.index + 1;
    if (re.lastIndex > bare.length) break;
  }
  return out + bare.slice(last) + query;
}

function substitute(template: string, groups: RegExpExecArray): string {
  return template.replace(/\\(\d|\\)/g, (_, ref: string) =>
    ref === "\\" ? "\\" : (groups[Number(ref)] ?? ""),
  );
}

export interface CompiledRedirect {
  uri?: string;
  authority?: string;
  scheme?: string;
  /** A fixed port, or the port the request came in on (`derivePort: FROM_REQUEST_PORT`). */
  port?: number | "request";
  status: number;
}

/** Istio's supported redirect codes; 0 is "unset" and means 301. */
export const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

/**
 * The Location of a redirect, per Envoy's RedirectAction: scheme from the redirect or the
 * request; host from `authority` or the request's Host (whose port is dropped when a new port
 * is set, or when the scheme changes and the port was the old scheme's default); a `uri`
 * replaces the path but keeps the request's query unless it brings its own.
 */
export function redirectLocation(redirect: CompiledRedirect, req: L7Request): string {
  const scheme = redirect.scheme || req.scheme;

  let port = redirect.port === "request" ? req.port : redirect.port;
  // Istio leaves the default port for the scheme out (it assumes plain http inside the mesh).
  const portScheme = redirect.scheme || "http";
  if ((port === 80 && portScheme === "http") || (port === 443 && portScheme === "https")) port = undefined;
  const portPart = port === undefined ? "" : `:${port}`;

  const host = redirect.authority || requestHost(req, scheme, portPart !== "");

  let path = req.path;
  if (redirect.uri) {
    path = redirect.uri.includes("?") ? redirect.uri : redirect.uri + splitQuery(req.path).query;
  }
  if (!path.startsWith("/")) path = `/${path}`;
  return `${scheme}://${host}${portPart}${path}`;
}

function requestHost(req: L7Request, newScheme: string, newPort: boolean): string {
  const host = req.authority;
  const colon = host.startsWith("[") ? host.lastIndexOf("]:") + 1 : host.lastIndexOf(":");
  if (colon <= 0) return host;
  const port = host.slice(colon);
  // Envoy compares against X-Forwarded-Proto, which it sets from the downstream connection.
  const requestProtocol = req.headers["x-forwarded-proto"] ?? req.scheme;
  let remove = newPort;
  if (newScheme !== requestProtocol) {
    remove ||=
      (requestProtocol === "https" && port === ":443") || (requestProtocol === "http" && port === ":80");
  }
  return remove ? host.slice(0, colon) : host;
}
