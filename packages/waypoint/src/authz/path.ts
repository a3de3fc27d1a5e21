// Path normalization and path templates for `paths`/`notPaths`. Istio's default
// meshConfig.pathNormalization is BASE, which is Envoy's `normalize_path`: Chromium's URL path
// canonicalization, ported byte for byte here so that `/a/../admin` and `/%61dmin` match `/admin`.

/** meshConfig.pathNormalization.normalization. */
export type PathNormalization = "NONE" | "BASE" | "MERGE_SLASHES" | "DECODE_AND_MERGE_SLASHES";

// Chromium's per-byte path flags (url_canon_path.cc), which Envoy snapshots.
const SPECIAL = 1;
const ESCAPE_BIT = 2;
const ESCAPE = ESCAPE_BIT | SPECIAL;
const UNESCAPE = 4;
const INVALID = 8 | SPECIAL;
const PASS = 0;

const PATH_FLAGS: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(ESCAPE); // controls, DEL and every high-bit byte are escaped
  t[0] = INVALID; // a NUL fails canonicalization: Envoy answers 400
  for (const c of "!$&'()*+,/:;=@[]") t[c.charCodeAt(0)] = PASS;
  for (const c of "-_~") t[c.charCodeAt(0)] = UNESCAPE;
  for (let c = 0x30; c <= 0x39; c++) t[c] = UNESCAPE;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = UNESCAPE;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = UNESCAPE;
  t[0x2e] = SPECIAL; // "." starts a possible dot segment
  return t;
})();

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const PERCENT = 0x25;

const isSlash = (c: number | undefined) => c === SLASH || c === BACKSLASH;

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The byte an escape at `at` ("%XX") stands for, or -1 when it is not a valid escape. */
function decodeEscape(bytes: ArrayLike<number>, at: number, end: number): number {
  if (at + 3 > end) return -1;
  const hi = hexValue(bytes[at + 1]);
  const lo = hexValue(bytes[at + 2]);
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/** 1 for ".", 3 for "%2e"/"%2E" (Chromium treats an escaped dot as a dot), else 0. */
function dotLength(bytes: Uint8Array, at: number, end: number): number {
  if (bytes[at] === DOT) return 1;
  if (bytes[at] === PERCENT && at + 3 <= end && bytes[at + 1] === 0x32 && (bytes[at + 2]! | 0x20) === 0x65) {
    return 3;
  }
  return 0;
}

function appendEscaped(out: number[], byte: number): void {
  const hex = byte.toString(16).toUpperCase().padStart(2, "0");
  out.push(PERCENT, hex.charCodeAt(0), hex.charCodeAt(1));
}

/**
 * Chromium's guard against "%%30%30": once an escape next to an earlier lone "%" has been decoded,
 * the output must not form a new valid escape, so that "%" becomes "%25".
 */
function fixNestedEscape(bytes: Uint8Array, next: number, end: number, lastPercent: number, out: number[]) {
  const length = out.length;
  const lastUnescaped = out[length - 1]!;
  const appendNext = lastPercent === length - 2;
  if (appendNext) {
    if (next === end || bytes[next]! >= 0x80) return;
    out.push(bytes[next]!);
  }
  if (decodeEscape(out, lastPercent, out.length) >= 0) {
    if (!appendNext) out.push(out[lastPercent + 1]!);
    out[lastPercent + 1] = 0x32;
    out[lastPercent + 2] = 0x35;
    out.push(lastUnescaped);
  } else if (appendNext) {
    out.length = length;
  }
}

function toBytes(text: string): Uint8Array {
  const out: number[] = [];
  const encoder = new TextEncoder();
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    // Node hands raw request-target bytes over as latin1; anything wider is UTF-8 on the wire.
    if (cp < 0x100) out.push(cp);
    else out.push(...encoder.encode(ch));
  }
  return Uint8Array.from(out);
}

/** Chromium's DoPath: undefined when the path holds a byte that fails canonicalization (NUL). */
function canonicalizePath(path: string): string | undefined {
  const bytes = toBytes(path);
  const end = bytes.length;
  const out: number[] = [];
  if (!isSlash(bytes[0])) out.push(SLASH);
  let lastInvalidPercent = Number.MIN_SAFE_INTEGER;
  let ok = true;
  for (let i = 0; i < end; i++) {
    const ch = bytes[i]!;
    const flags = PATH_FLAGS[ch]!;
    if (!(flags & SPECIAL)) {
      out.push(ch);
      continue;
    }
    const dots = dotLength(bytes, i, end);
    if (dots > 0) {
      if (out[out.length - 1] !== SLASH) {
        out.push(DOT); // a dot inside a segment name
        i += dots - 1;
        continue;
      }
      const after = i + dots;
      let consumed = 0;
      let kind: "name" | "current" | "parent" = "name";
      if (after === end) {
        kind = "current";
      } else if (isSlash(bytes[after])) {
        kind = "current";
        consumed = 1;
      } else {
        const second = dotLength(bytes, after, end);
        if (second > 0 && (after + second === end || isSlash(bytes[after + second]))) {
          kind = "parent";
          consumed = after + second === end ? second : second + 1;
        }
      }
      if (kind === "name") {
        out.push(DOT);
        i += dots - 1;
      } else {
        // ".." above the root stays at the root, as browsers and Envoy do.
        if (kind === "parent" && out.length > 1) {
          let j = out.length - 2;
          while (j > 0 && out[j] !== SLASH) j--;
          out.length = j + 1;
        }
        i += dots + consumed - 1;
      }
    } else if (ch === BACKSLASH) {
      out.push(SLASH);
    } else if (ch === PERCENT) {
      const value = decodeEscape(bytes, i, end);
      if (value < 0) {
        lastInvalidPercent = out.length;
        out.push(PERCENT); // a lone "%" passes through, as in Chromium's permissive mode
        continue;
      }
      i += 2;
      const valueFlags = PATH_FLAGS[value]!;
      if (valueFlags & UNESCAPE) {
        out.push(value);
        if (lastInvalidPercent >= out.length - 3) fixNestedEscape(bytes, i + 1, end, lastInvalidPercent, out);
      } else {
        // Kept exactly as sent, hex case included: "%2F" is not "/", and servers may care about case.
        out.push(PERCENT, bytes[i - 1]!, bytes[i]!);
        if (valueFlags === INVALID) ok = false;
      }
    } else if (flags === INVALID) {
      appendEscaped(out, ch);
      ok = false;
    } else if (flags & ESCAPE_BIT) {
      appendEscaped(out, ch);
    }
  }
  return ok ? String.fromCharCode(...out) : undefined;
}

/** Splits a request target into path and query ("?..."); a fragment is dropped, Envoy never forwards one. */
export function splitPathAndQuery(target: string): { path: string; query: string } {
  const hash = target.indexOf("#");
  const withoutFragment = hash >= 0 ? target.slice(0, hash) : target;
  const q = withoutFragment.indexOf("?");
  return q >= 0
    ? { path: withoutFragment.slice(0, q), query: withoutFragment.slice(q) }
    : { path: withoutFragment, query: "" };
}

/**
 * The request target as the waypoint authorizes and forwards it. BASE: RFC 3986 normalization as
 * Envoy's normalize_path does it (unreserved escapes decoded, `.`/`..` resolved, `\` read as `/`,
 * other escapes such as `%2F` kept; slashes are not merged). MERGE_SLASHES also merges `//`;
 * DECODE_AND_MERGE_SLASHES first decodes `%2F`/`%5C`. The query is kept, unnormalized.
 * Returns undefined when Envoy would reject the path (400).
 */
export function normalizePath(target: string, mode: PathNormalization = "BASE"): string | undefined {
  if (mode === "NONE") return target;
  // Only origin-form targets have a path to normalize ("*" for OPTIONS, authority-form for CONNECT).
  if (!target.startsWith("/")) return target;
  let { path, query } = splitPathAndQuery(target);
  if (mode === "DECODE_AND_MERGE_SLASHES") path = path.replace(/%2f/gi, "/").replace(/%5c/gi, "\\");
  const canonical = canonicalizePath(path);
  if (canonical === undefined) return undefined;
  const merged = mode === "BASE" ? canonical : canonical.replace(/\/{2,}/g, "/");
  return merged + query;
}

// ---- path templates ----

/** Envoy's uri_template pchar class: what `{*}` may match inside one segment. */
const PCHAR = "A-Za-z0-9\\-._~%!$&'()+,;:@=";

export function isPathTemplate(pattern: string): boolean {
  return pattern.includes("{*}") || pattern.includes("{**}");
}

/**
 * A path with `{*}` (one non-empty segment) or `{**}` (anything to the end, including nothing and
 * further slashes; only last) as Envoy's uri_template matcher reads it after istiod rewrites the
 * operators to `*` and `**`. Throws on a template Envoy would reject.
 */
export function compilePathTemplate(template: string): RegExp {
  const envoy = template.replaceAll("{**}", "**").replaceAll("{*}", "*");
  if (!envoy.startsWith("/") || /[{}]/.test(envoy)) throw new Error(`invalid path template ${template}`);
  let source = "^";
  let sawTextGlob = false;
  for (let i = 0; i < envoy.length; ) {
    if (envoy[i] === "*") {
      if (sawTextGlob) throw new Error(`invalid path template ${template}: {**} must be the last operator`);
      if (envoy[i + 1] === "*") {
        source += `[${PCHAR}/]*`;
        sawTextGlob = true;
        i += 2;
      } else {
        source += `[${PCHAR}]+`;
        i += 1;
      }
    } else {
      source += envoy[i]!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      i += 1;
    }
  }
  return new RegExp(`${source}$`);
}
