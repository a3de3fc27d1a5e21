// The string-match dialects istiod compiles AuthorizationPolicy values into. All read "abc*" as a
// prefix, "*abc" as a suffix and "*" as presence, but they differ on what presence means and on
// case: mirroring each one keeps edge cases (an empty header, a mixed-case Host) decided as in Envoy.

/** A compiled value: undefined input means the attribute is absent from the request. */
export type StringPredicate = (value: string | undefined) => boolean;

/**
 * Istio's StringMatcher (paths, SNI, JWT claims, principals): "*" is the regex `.+`, so it needs a
 * non-empty value. `fixedPrefix` is prepended to exact and prefix patterns and required before a
 * suffix pattern, which is how `principals` compare against `spiffe://<value>`.
 */
export function stringMatcher(pattern: string, fixedPrefix = ""): StringPredicate {
  if (pattern === "*") return (v) => v !== undefined && v.length > 0;
  if (pattern.startsWith("*")) {
    const suffix = pattern.slice(1);
    // istiod turns a prefixed suffix match into the regex `<prefix>.*<suffix>`.
    return (v) =>
      v !== undefined &&
      v.length >= fixedPrefix.length + suffix.length &&
      v.startsWith(fixedPrefix) &&
      v.endsWith(suffix);
  }
  if (pattern.endsWith("*")) {
    const prefix = fixedPrefix + pattern.slice(0, -1);
    return (v) => v?.startsWith(prefix) === true;
  }
  const exact = fixedPrefix + pattern;
  return (v) => v === exact;
}

/**
 * Istio's HeaderMatcher (`request.headers[...]`, methods) and HostMatcher (`hosts`, which ignores
 * case): "*" is Envoy's present_match, true even for an empty header value.
 */
export function headerMatcher(pattern: string, ignoreCase = false): StringPredicate {
  if (pattern === "*") return (v) => v !== undefined;
  const fold = ignoreCase ? (s: string) => s.toLowerCase() : (s: string) => s;
  if (pattern.startsWith("*")) {
    const suffix = fold(pattern.slice(1));
    return (v) => v !== undefined && fold(v).endsWith(suffix);
  }
  if (pattern.endsWith("*")) {
    const prefix = fold(pattern.slice(0, -1));
    return (v) => v !== undefined && fold(v).startsWith(prefix);
  }
  const exact = fold(pattern);
  return (v) => v !== undefined && fold(v) === exact;
}

/**
 * `request.experimental.inline.headers[...]`: istiod's HeaderMatcherWithRegex, which matches the
 * whole value or any element of a comma-joined list (RFC 7230 repeated headers).
 */
export function listHeaderMatcher(pattern: string): StringPredicate {
  if (pattern === "*") return (v) => v !== undefined;
  const one = headerMatcher(pattern);
  // istiod's regex has no whitespace handling: ", b" is the element " b", as in Envoy.
  return (v) => v !== undefined && (one(v) || v.split(",").some((part) => one(part)));
}

/** Escapes text for use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * A glob where every "*" is `.*`, anchored: istiod's namespace matcher writes the value straight
 * into the regex `.*\/ns/<value>/.*` with "*" replaced by ".*".
 */
export function globToRegExpSource(glob: string): string {
  return glob.split("*").map(escapeRegExp).join(".*");
}
