// HTTPMatchRequest evaluation: Istio's StringMatch (exact / prefix / RE2 regex that must match
// the whole value), header presence and absence, query parameters, URI case folding, port and
// source constraints. Regexes compile once at config time and are shared through a cache.

import RE2 from "re2";
import type { L7Request } from "../model/request.js";
import type { ConfigProblems, HttpMatchRequest, StringMatch } from "./spec.js";

/** `present` is Istio's reading of `{}` (and of regex `*`): the value only has to exist. */
export type CompiledStringMatch =
  | { kind: "exact"; value: string }
  | { kind: "prefix"; value: string }
  | { kind: "regex"; value: string; re: RE2 }
  | { kind: "present" };

export interface UriMatch {
  match: CompiledStringMatch;
  ignoreCase: boolean;
}

export interface CompiledMatch {
  name?: string;
  uri?: UriMatch;
  scheme?: CompiledStringMatch;
  method?: CompiledStringMatch;
  authority?: CompiledStringMatch;
  headers: [string, CompiledStringMatch][];
  withoutHeaders: [string, CompiledStringMatch][];
  queryParams: [string, CompiledStringMatch][];
  port?: number;
  sourceNamespace?: string;
  sourceLabels?: Record<string, string>;
  /** Match-level gateways; when set they replace the VirtualService's list for this block. */
  gateways?: string[];
}

const REGEX_CACHE = new Map<string, RE2>();

/** RE2 anchored at both ends: Envoy's safe_regex is a full match, never a search. */
function fullMatchRegex(pattern: string): RE2 {
  let re = REGEX_CACHE.get(pattern);
  if (!re) {
    re = new RE2(`^(?:${pattern})$`, "u");
    REGEX_CACHE.set(pattern, re);
  }
  return re;
}

export function compileStringMatch(
  spec: StringMatch | undefined,
  where: { object: string; path: string; problems: ConfigProblems },
): CompiledStringMatch | undefined {
  if (spec === undefined || spec === null) return undefined;
  if (typeof spec.exact === "string") return { kind: "exact", value: spec.exact };
  if (typeof spec.prefix === "string") return { kind: "prefix", value: spec.prefix };
  if (typeof spec.regex === "string") {
    // Istio translates the non-regex "*" into a presence check rather than failing (istio#20629).
    if (spec.regex === "*") return { kind: "present" };
    try {
      return { kind: "regex", value: spec.regex, re: fullMatchRegex(spec.regex) };
    } catch (err) {
      where.problems.add(
        where.object,
        `${where.path}.regex`,
        `not a valid RE2 expression: ${(err as Error).message}`,
      );
      return undefined;
    }
  }
  return { kind: "present" };
}

/** Whether a value that is present satisfies the match (`undefined` = absent). */
export function stringMatches(
  m: CompiledStringMatch,
  value: string | undefined,
  ignoreCase = false,
): boolean {
  if (value === undefined) return false;
  switch (m.kind) {
    case "present":
      return true;
    case "exact":
      return ignoreCase ? value.toLowerCase() === m.value.toLowerCase() : value === m.value;
    case "prefix":
      return ignoreCase ? value.toLowerCase().startsWith(m.value.toLowerCase()) : value.startsWith(m.value);
    case "regex":
      return m.re.test(value);
  }
}

export function compileMatch(
  spec: HttpMatchRequest,
  where: { object: string; path: string; problems: ConfigProblems },
): CompiledMatch {
  const at = (field: string) => ({ ...where, path: `${where.path}.${field}` });
  const map = (field: "headers" | "withoutHeaders" | "queryParams", lower: boolean) =>
    Object.entries(spec[field] ?? {}).flatMap(([name, sm]): [string, CompiledStringMatch][] => {
      const compiled = compileStringMatch(sm ?? {}, at(`${field}.${name}`)) ?? { kind: "present" };
      return [[lower ? name.toLowerCase() : name, compiled]];
    });

  const out: CompiledMatch = {
    headers: map("headers", true),
    withoutHeaders: map("withoutHeaders", true),
    queryParams: map("queryParams", false),
  };
  if (spec.name) out.name = spec.name;
  const uri = compileStringMatch(spec.uri, at("uri"));
  if (uri) out.uri = { match: uri, ignoreCase: spec.ignoreUriCase === true };
  const scheme = compileStringMatch(spec.scheme, at("scheme"));
  if (scheme) out.scheme = scheme;
  const method = compileStringMatch(spec.method, at("method"));
  if (method) out.method = method;
  const authority = compileStringMatch(spec.authority, at("authority"));
  if (authority) out.authority = authority;
  if (typeof spec.port === "number" && spec.port !== 0) out.port = spec.port;
  if (spec.sourceNamespace) out.sourceNamespace = spec.sourceNamespace;
  if (spec.sourceLabels && Object.keys(spec.sourceLabels).length > 0) out.sourceLabels = spec.sourceLabels;
  if (spec.gateways && spec.gateways.length > 0) out.gateways = spec.gateways;
  return out;
}

/** JWT-claim "headers" (`@request.auth.claims.*`) need the authenticated claims, which the
 * request model does not carry: they are evaluated as if the claim were absent. */
function isClaimHeader(name: string): boolean {
  return name.startsWith("@request.auth.claims");
}

/**
 * The request-time half of a match block. Port, gateways and sourceLabels are settled when the
 * table is compiled for a port (see compile.ts); everything here depends on the request itself.
 */
export function matchRequest(m: CompiledMatch, req: L7Request): boolean {
  if (m.uri && !uriMatches(m.uri, req.path)) return false;
  if (m.scheme && !stringMatches(m.scheme, req.scheme)) return false;
  if (m.method && !stringMatches(m.method, req.method)) return false;
  // Envoy matches the :authority header as sent, port included.
  if (m.authority && !stringMatches(m.authority, req.authority)) return false;

  for (const [name, sm] of m.headers) {
    if (isClaimHeader(name) || !stringMatches(sm, req.headers[name])) return false;
  }
  for (const [name, sm] of m.withoutHeaders) {
    if (isClaimHeader(name)) continue;
    // Istio sets treat_missing_header_as_empty on inverted value matches, so an absent header
    // is compared as "" (only a presence check sees it as truly absent).
    const value = req.headers[name] ?? (sm.kind === "present" ? undefined : "");
    if (stringMatches(sm, value)) return false;
  }
  if (m.queryParams.length > 0) {
    const query = parseQuery(req.path);
    for (const [name, sm] of m.queryParams) {
      if (!stringMatches(sm, query.get(name))) return false;
    }
  }
  if (m.sourceNamespace !== undefined && m.gateways === undefined) {
    if (sourceNamespaceOf(req) !== m.sourceNamespace) return false;
  }
  return true;
}

/**
 * Envoy's path matching: exact and regex see the path without query or fragment; a prefix is
 * compared against the whole :path. `ignoreUriCase` folds exact and prefix only, never regex.
 */
function uriMatches(uri: UriMatch, path: string): boolean {
  const m = uri.match;
  if (m.kind === "prefix") return stringMatches(m, path, uri.ignoreCase);
  return stringMatches(m, pathOnly(path), uri.ignoreCase);
}

function pathOnly(path: string): string {
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}

/** First value of each query parameter, percent-decoded; `?flag` has the value "". */
export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf("?");
  if (q === -1) return out;
  const hash = path.indexOf("#", q);
  const query = path.slice(q + 1, hash === -1 ? undefined : hash);
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = decode(eq === -1 ? part : part.slice(0, eq));
    if (!out.has(name)) out.set(name, eq === -1 ? "" : decode(part.slice(eq + 1)));
  }
  return out;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a stray '%' is kept literally rather than failing the whole match
  }
}

/** The client's namespace: from the model, else from its SPIFFE ID (spiffe://td/ns/<ns>/sa/<sa>). */
export function sourceNamespaceOf(req: L7Request): string | undefined {
  if (req.source.namespace) return req.source.namespace;
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(req.source.principal ?? "");
  return m?.[1];
}
