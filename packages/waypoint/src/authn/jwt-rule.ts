// The RequestAuthentication shape (security.istio.io/v1, already validated and selected for this
// waypoint) and its jwtRules compiled into providers as istiod compiles them for Envoy's jwt_authn:
// one provider per rule, sorted by issuer, with Envoy's default token locations.

export interface JwtHeaderLocation {
  name: string;
  prefix?: string;
}

export interface ClaimToHeader {
  header: string;
  claim: string;
}

export interface JwtRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  /** Inline JSON Web Key Set, as a JSON string. */
  jwks?: string;
  fromHeaders?: JwtHeaderLocation[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: ClaimToHeader[];
  /** Claims to split on spaces (besides `scope` and `permission`) before authorization sees them. */
  spaceDelimitedClaims?: string[];
  /** JWKS fetch timeout, a protobuf Duration such as "5s". */
  timeout?: string;
}

export interface RequestAuthenticationObject {
  metadata: { name: string; namespace?: string };
  spec?: { jwtRules?: JwtRule[] | null; [field: string]: unknown } | null;
  [field: string]: unknown;
}

export type TokenLocation =
  | { kind: "header"; name: string; prefix: string }
  | { kind: "param"; name: string }
  | { kind: "cookie"; name: string };

/** One jwtRule, ready to verify tokens. */
export interface JwtProvider {
  /** Envoy's provider name istiod assigns: `origins-<index after sorting by issuer>`. */
  name: string;
  /** `<namespace>/<name>` of the RequestAuthentication the rule came from. */
  source: string;
  rule: JwtRule;
  locations: TokenLocation[];
  /** Sanitized (see sanitizeAudience); empty means any audience. */
  audiences: Set<string>;
  timeoutMs: number;
  spaceDelimitedClaims: string[];
}

/** istiod's default JWKS fetch timeout. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

/** Claims istiod always asks Envoy to split on spaces (OAuth `scope`, and `permission`). */
const DEFAULT_SPACE_DELIMITED = ["permission", "scope"];

/**
 * jwt_verify_lib compares audiences without their http(s):// scheme and trailing slash, so
 * "https://api.example.com/" in a rule accepts a token for "api.example.com".
 */
export function sanitizeAudience(aud: string): string {
  let out = aud;
  if (out.startsWith("http://")) out = out.slice("http://".length);
  else if (out.startsWith("https://")) out = out.slice("https://".length);
  if (out.endsWith("/")) out = out.slice(0, -1);
  return out;
}

/** A protobuf Duration as YAML carries it ("5s", "1.5s"), plus Go-style "500ms", "1m", "1h". */
export function parseDurationMs(text: string | undefined, fallback: number): number {
  if (typeof text !== "string") return fallback;
  const m = text.trim().match(/^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/);
  if (!m) return fallback;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(n * unit);
}

/** Envoy's default when a rule names no location: `Authorization: Bearer <token>` and `?access_token=`. */
export function ruleLocations(rule: JwtRule): TokenLocation[] {
  const headers = rule.fromHeaders ?? [];
  const params = rule.fromParams ?? [];
  const cookies = rule.fromCookies ?? [];
  if (headers.length === 0 && params.length === 0 && cookies.length === 0) {
    return [
      { kind: "header", name: "authorization", prefix: "Bearer " },
      { kind: "param", name: "access_token" },
    ];
  }
  const out: TokenLocation[] = [];
  const seen = new Set<string>();
  const add = (key: string, loc: TokenLocation) => {
    // Envoy keys header locations by name+prefix, so a repeated entry reads the token once.
    if (!seen.has(key)) out.push(loc);
    seen.add(key);
  };
  for (const h of headers)
    add(`h:${h.name.toLowerCase()}:${h.prefix ?? ""}`, {
      kind: "header",
      name: h.name.toLowerCase(),
      prefix: h.prefix ?? "",
    });
  for (const p of params) add(`p:${p}`, { kind: "param", name: p });
  for (const c of cookies) add(`c:${c}`, { kind: "cookie", name: c });
  return out;
}

/** Every jwtRule of the given RequestAuthentications, as istiod orders them (by issuer, stable). */
export function compileProviders(policies: readonly RequestAuthenticationObject[]): JwtProvider[] {
  const rules: Array<{ rule: JwtRule; source: string }> = [];
  for (const policy of policies) {
    const source = `${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`;
    for (const rule of policy.spec?.jwtRules ?? []) {
      if (rule && typeof rule.issuer === "string") rules.push({ rule, source });
    }
  }
  rules.sort((a, b) => (a.rule.issuer < b.rule.issuer ? -1 : a.rule.issuer > b.rule.issuer ? 1 : 0));
  return rules.map(({ rule, source }, i) => ({
    name: `origins-${i}`,
    source,
    rule,
    locations: ruleLocations(rule),
    audiences: new Set((rule.audiences ?? []).map(sanitizeAudience)),
    timeoutMs: parseDurationMs(rule.timeout, DEFAULT_JWKS_TIMEOUT_MS),
    spaceDelimitedClaims: [...new Set([...DEFAULT_SPACE_DELIMITED, ...(rule.spaceDelimitedClaims ?? [])])],
  }));
}
