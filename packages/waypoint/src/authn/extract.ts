// Finding JWTs in a request the way Envoy's jwt_authn extractor does: headers (after a value
// prefix, keeping only the base64url-and-dot run), then query parameters, then cookies. What is
// found decides "missing" (passes) versus "present" (must verify), so the details matter.

import type { L7Request } from "../model/request.js";
import type { TokenLocation } from "./jwt-rule.js";

export interface ExtractedToken {
  token: string;
  location: TokenLocation;
}

const JWT_CHARS = /[A-Za-z0-9\-_.]/;

/**
 * The token after a prefix: skip to the first base64url-or-dot character, keep the run of them.
 * Envoy does this so "Bearer <jwt>, Basic x" or a trailing comma still yields the JWT; when no
 * such character follows, it keeps the whole value (and verification then fails on it).
 */
function tokenAfter(value: string, from: number): string {
  let start = from;
  while (start < value.length && !JWT_CHARS.test(value[start]!)) start++;
  if (start === value.length) return value;
  let end = start;
  while (end < value.length && JWT_CHARS.test(value[end]!)) end++;
  return value.slice(start, end);
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Query parameters of the request target; the first occurrence of a name wins, as in Envoy. */
export function queryParams(target: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = target.indexOf("?");
  if (q < 0) return out;
  const hash = target.indexOf("#", q);
  const query = target.slice(q + 1, hash >= 0 ? hash : undefined);
  for (const pair of query.split("&")) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf("=");
    const name = decodeComponent(eq >= 0 ? pair.slice(0, eq) : pair);
    const value = eq >= 0 ? decodeComponent(pair.slice(eq + 1)) : "";
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** Cookies from the Cookie header; a double-quoted value is unquoted and the first name wins. */
export function cookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  // Repeated Cookie headers arrive joined by ", " in the request model; "; " separates cookies.
  for (const part of header.split(/;\s*|,\s+/)) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

export function extractTokens(req: L7Request, locations: readonly TokenLocation[]): ExtractedToken[] {
  const out: ExtractedToken[] = [];
  let params: Map<string, string> | undefined;
  let jar: Map<string, string> | undefined;
  for (const location of locations) {
    if (location.kind === "header") {
      const value = req.headers[location.name];
      if (value === undefined) continue;
      if (location.prefix === "") {
        out.push({ token: value, location });
        continue;
      }
      // Envoy looks for the prefix anywhere in the value, case-sensitively ("bearer x" is no token).
      const at = value.indexOf(location.prefix);
      if (at < 0) continue;
      out.push({ token: tokenAfter(value, at + location.prefix.length), location });
    } else if (location.kind === "param") {
      params ??= queryParams(req.path);
      const value = params.get(location.name);
      if (value !== undefined) out.push({ token: value, location });
    } else {
      jar ??= cookies(req.headers["cookie"]);
      const value = jar.get(location.name);
      if (value !== undefined) out.push({ token: value, location });
    }
  }
  // Envoy checks header locations, then parameters, then cookies, whatever the rule's order.
  const rank = { header: 0, param: 1, cookie: 2 } as const;
  return out.sort((a, b) => rank[a.location.kind] - rank[b.location.kind]);
}
