// RequestAuthentication at the waypoint: Envoy's jwt_authn as istiod configures it. A request with
// no token passes without a request principal; a token that is present must be valid for a rule
// whose issuer it names, or the request is refused (401, or 403 for a wrong audience).

import type { JWTPayload } from "jose";
import type { L7Request } from "../model/request.js";
import { type ExtractedToken, extractTokens } from "./extract.js";
import { inlineKeySource, JwksCache, type KeySource } from "./jwks.js";
import { compileProviders, type JwtProvider, type RequestAuthenticationObject } from "./jwt-rule.js";
import { type JwtFailure, jwtFailureMessage, jwtFailureStatus } from "./status.js";
import { DEFAULT_CLOCK_SKEW_SECONDS, type ParsedJwt, verifyToken } from "./verify-token.js";

export interface AuthnSuccess {
  ok: true;
  /** `<iss>/<sub>` of the verified token; absent when the request carried none. */
  principal?: string;
  /** The verified payload as authorization sees it: `scope`, `permission` (and the rule's
   *  spaceDelimitedClaims) split on spaces into lists, as istiod asks Envoy to. */
  claims?: JWTPayload;
  /** Lowercase header names to drop before forwarding; apply before addHeaders. */
  removeHeaders: string[];
  /** Lowercase header names to set before forwarding. */
  addHeaders: Record<string, string>;
}

export interface AuthnFailure {
  ok: false;
  status: 401 | 403;
  /** Envoy's response body, e.g. "Jwt is expired". */
  reason: string;
  code: JwtFailure;
  /** The WWW-Authenticate header Envoy sends with the refusal. */
  wwwAuthenticate: string;
}

export type AuthnResult = AuthnSuccess | AuthnFailure;

export interface JwtAuthenticatorOptions {
  /** Share fetched key sets across authenticators (rebuilt on every config change). */
  jwksCache?: JwksCache;
  clockSkewSeconds?: number;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
}

/** What one provider (jwtRule) made of the tokens at its own locations. */
type ProviderOutcome =
  | { status: "ok"; verified: Array<{ token: ExtractedToken; jwt: ParsedJwt }> }
  | { status: "missing" }
  | { status: JwtFailure };

const isFailure = (s: ProviderOutcome["status"]): s is JwtFailure => s !== "ok" && s !== "missing";

function claimString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  // Envoy writes integral numbers without a fraction, and booleans as true/false.
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "object" && value !== null)
    return Buffer.from(JSON.stringify(value)).toString("base64");
  return undefined;
}

/** A claim by dotted path ("realm.role"), as Envoy's claim_to_headers reads nested claims. */
function claimAt(payload: JWTPayload, path: string): unknown {
  let cur: unknown = payload;
  for (const key of path.split(".")) {
    if (typeof cur !== "object" || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function isCorsPreflight(req: L7Request): boolean {
  return (
    req.method === "OPTIONS" && !!req.headers["origin"] && !!req.headers["access-control-request-method"]
  );
}

export class JwtAuthenticator {
  readonly providers: readonly JwtProvider[];
  private readonly keySources: ReadonlyArray<KeySource | undefined>;
  /** Payload and claim headers: clients must not be able to send them in (Envoy sanitizes them). */
  private readonly sanitized: string[];
  private readonly clockSkewSeconds: number;
  private readonly now: () => number;

  constructor(policies: readonly RequestAuthenticationObject[], options: JwtAuthenticatorOptions = {}) {
    const cache = options.jwksCache ?? new JwksCache(options.now ? { now: options.now } : {});
    this.providers = compileProviders(policies);
    this.keySources = this.providers.map(({ rule, timeoutMs }) => {
      // An inline jwks wins over jwksUri, as istiod resolves them.
      if (rule.jwks) return inlineKeySource(rule.jwks);
      if (rule.jwksUri) return cache.remote(rule.jwksUri, timeoutMs);
      return cache.discovered(rule.issuer, timeoutMs);
    });
    const names = new Set<string>();
    for (const { rule } of this.providers) {
      if (rule.outputPayloadToHeader) names.add(rule.outputPayloadToHeader.toLowerCase());
      for (const c of rule.outputClaimToHeaders ?? []) names.add(c.header.toLowerCase());
    }
    this.sanitized = [...names];
    this.clockSkewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
    this.now = options.now ?? Date.now;
  }

  async authenticate(req: L7Request): Promise<AuthnResult> {
    const anonymous = (): AuthnSuccess => ({ ok: true, removeHeaders: [...this.sanitized], addHeaders: {} });
    // istiod sets bypass_cors_preflight: a browser's preflight never carries credentials.
    if (this.providers.length === 0 || isCorsPreflight(req)) return anonymous();

    // istiod's requirement: any provider OK, or every provider "OK or missing"
    // (requires_any [P1..Pn, requires_all [any[P1, allow_missing]..]]). Providers run in issuer
    // order and the first success ends verification, as Envoy's requires_any does.
    const outcomes: ProviderOutcome[] = [];
    for (let i = 0; i < this.providers.length; i++) {
      const outcome = await this.verifyProvider(this.providers[i]!, this.keySources[i], req);
      if (outcome.status === "ok") return this.success(this.providers[i]!, outcome.verified);
      outcomes.push(outcome);
    }
    const allOf = outcomes.find((o) => o.status !== "missing")?.status;
    if (allOf === undefined) return anonymous();

    // Envoy's requires_any error: prefer a real error (the last one) over "issuer not configured"
    // over "missing"; the requires_all child is the last one looked at.
    let final: ProviderOutcome["status"] = "missing";
    for (const s of [...outcomes.map((o) => o.status), allOf]) {
      if (isFailure(s) && s !== "JWT_UNKNOWN_ISSUER") final = s;
      else if (final === "missing") final = s;
    }
    return this.failure(req, isFailure(final) ? final : "JWT_MISSING");
  }

  private async verifyProvider(
    provider: JwtProvider,
    keys: KeySource | undefined,
    req: L7Request,
  ): Promise<ProviderOutcome> {
    const tokens = extractTokens(req, provider.locations);
    if (tokens.length === 0) return { status: "missing" };
    const verified: Array<{ token: ExtractedToken; jwt: ParsedJwt }> = [];
    // Every token found must verify: a good token must not vouch for a bad one next to it.
    // Envoy works from the last location back, which decides the reason when several are bad.
    for (const token of [...tokens].reverse()) {
      const result = await verifyToken(token.token, provider, keys, {
        nowSeconds: Math.floor(this.now() / 1000),
        clockSkewSeconds: this.clockSkewSeconds,
      });
      if (!result.ok) return { status: result.failure };
      verified.push({ token, jwt: result.jwt });
    }
    return { status: "ok", verified };
  }

  private success(
    provider: JwtProvider,
    verified: Array<{ token: ExtractedToken; jwt: ParsedJwt }>,
  ): AuthnSuccess {
    const { rule } = provider;
    const removeHeaders = new Set(this.sanitized);
    const addHeaders: Record<string, string> = {};
    // The last token verified (the first one found) is the one Envoy's metadata, and so the
    // request principal, ends up describing.
    const { jwt } = verified[verified.length - 1]!;
    if (rule.outputPayloadToHeader) addHeaders[rule.outputPayloadToHeader.toLowerCase()] = jwt.payloadSegment;
    for (const { header, claim } of rule.outputClaimToHeaders ?? []) {
      const value = claimString(claimAt(jwt.payload, claim));
      if (value) addHeaders[header.toLowerCase()] = value;
    }
    if (!rule.forwardOriginalToken) {
      // Envoy removes a token only from headers; parameters and cookies are left as sent.
      for (const { token } of verified)
        if (token.location.kind === "header") removeHeaders.add(token.location.name);
    }
    const claims: JWTPayload = { ...jwt.payload };
    for (const name of provider.spaceDelimitedClaims) {
      const v = claims[name];
      if (typeof v === "string") claims[name] = v.split(" ").filter((s) => s.length > 0);
    }
    return {
      ok: true,
      principal: `${jwt.payload.iss ?? ""}/${jwt.payload.sub ?? ""}`,
      claims,
      removeHeaders: [...removeHeaders],
      addHeaders,
    };
  }

  private failure(req: L7Request, code: JwtFailure): AuthnFailure {
    const realm = `${req.scheme}://${req.authority}${req.path}`;
    return {
      ok: false,
      status: jwtFailureStatus(code),
      reason: jwtFailureMessage(code),
      code,
      wwwAuthenticate: `Bearer realm="${realm}"${code === "JWT_MISSING" ? "" : ', error="invalid_token"'}`,
    };
  }
}
