// One token against one jwtRule, in jwt_authn's order: parse, issuer, time (60 s clock skew),
// audience, then the signature against a key picked by kid and alg. The order decides which reason
// a bad token gets: an expired token with a forged signature is "Jwt is expired", as in Envoy.

import { compactVerify, importJWK, type JSONWebKeySet, type JWK, type JWTPayload } from "jose";
import { isJwksFetchError, type KeySource } from "./jwks.js";
import { type JwtProvider, sanitizeAudience } from "./jwt-rule.js";
import type { JwtFailure } from "./status.js";

/** Envoy's jwt_authn clock_skew_seconds default. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;

/** The algorithms jwt_verify_lib implements; "none" and anything else is refused. */
const SUPPORTED_ALGS = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
  "EdDSA",
]);

export interface ParsedJwt {
  alg: string;
  kid: string | undefined;
  payload: JWTPayload;
  /** The payload segment as sent: what outputPayloadToHeader forwards (unpadded base64url). */
  payloadSegment: string;
}

export type TokenResult = { ok: true; jwt: ParsedJwt } | { ok: false; failure: JwtFailure };

const fail = (failure: JwtFailure): TokenResult => ({ ok: false, failure });

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function decodeSegment(segment: string): string | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  return Buffer.from(segment.replace(/=+$/, ""), "base64url").toString("utf8");
}

function parseObject(json: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const isTime = (v: unknown) => v === undefined || (typeof v === "number" && Number.isInteger(v) && v >= 0);

/** jwt_verify_lib's Jwt::parseFromString. */
export function parseJwt(token: string): { ok: true; jwt: ParsedJwt } | { ok: false; failure: JwtFailure } {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[2] === "") return { ok: false, failure: "JWT_BAD_FORMAT" };
  const [h, p, s] = parts as [string, string, string];
  const headerJson = decodeSegment(h);
  if (headerJson === undefined) return { ok: false, failure: "JWT_HEADER_BAD_BASE64" };
  const header = parseObject(headerJson);
  if (!header) return { ok: false, failure: "JWT_HEADER_BAD_JSON" };
  if (typeof header["alg"] !== "string") return { ok: false, failure: "JWT_HEADER_BAD_ALG" };
  if (!SUPPORTED_ALGS.has(header["alg"])) return { ok: false, failure: "JWT_HEADER_UNSUPPORTED_ALG" };
  if (header["kid"] !== undefined && typeof header["kid"] !== "string")
    return { ok: false, failure: "JWT_HEADER_BAD_KID" };
  const payloadJson = decodeSegment(p);
  if (payloadJson === undefined) return { ok: false, failure: "JWT_PAYLOAD_BAD_BASE64" };
  const payload = parseObject(payloadJson);
  if (!payload) return { ok: false, failure: "JWT_PAYLOAD_BAD_JSON" };
  if (payload["iss"] !== undefined && typeof payload["iss"] !== "string")
    return { ok: false, failure: "JWT_PAYLOAD_BAD_ISS" };
  if (payload["sub"] !== undefined && typeof payload["sub"] !== "string")
    return { ok: false, failure: "JWT_PAYLOAD_BAD_SUB" };
  const aud = payload["aud"];
  if (
    aud !== undefined &&
    typeof aud !== "string" &&
    !(Array.isArray(aud) && aud.every((a) => typeof a === "string"))
  ) {
    return { ok: false, failure: "JWT_PAYLOAD_BAD_AUD" };
  }
  if (!isTime(payload["exp"])) return { ok: false, failure: "JWT_PAYLOAD_BAD_EXP" };
  if (!isTime(payload["nbf"])) return { ok: false, failure: "JWT_PAYLOAD_BAD_NBF" };
  if (!isTime(payload["iat"])) return { ok: false, failure: "JWT_PAYLOAD_BAD_IAT" };
  if (!BASE64URL.test(s)) return { ok: false, failure: "JWT_SIGNATURE_BAD_BASE64" };
  return {
    ok: true,
    jwt: {
      alg: header["alg"],
      kid: header["kid"] as string | undefined,
      payload: payload as JWTPayload,
      payloadSegment: p,
    },
  };
}

/** The JWK key type (and curve) an algorithm needs. */
function keyFits(jwk: JWK, alg: string): boolean {
  if (alg.startsWith("RS") || alg.startsWith("PS")) return jwk.kty === "RSA";
  if (alg.startsWith("HS")) return jwk.kty === "oct";
  if (alg === "EdDSA") return jwk.kty === "OKP";
  const curve = { ES256: "P-256", ES384: "P-384", ES512: "P-521" }[alg];
  return jwk.kty === "EC" && jwk.crv === curve;
}

/**
 * jwt_verify_lib's key choice: a JWK is a candidate unless both it and the token carry a kid and
 * they differ, or it names a different alg. A key without a kid therefore serves any token.
 */
function candidates(set: JSONWebKeySet, jwt: ParsedJwt): JWK[] {
  return set.keys.filter(
    (jwk) =>
      !(jwt.kid !== undefined && typeof jwk.kid === "string" && jwk.kid !== jwt.kid) &&
      !(typeof jwk.alg === "string" && jwk.alg !== jwt.alg),
  );
}

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

const importedKeys = new WeakMap<JWK, Map<string, Promise<VerifyKey>>>();

function importKey(jwk: JWK, alg: string): Promise<VerifyKey> {
  let byAlg = importedKeys.get(jwk);
  if (!byAlg) {
    byAlg = new Map();
    importedKeys.set(jwk, byAlg);
  }
  let key = byAlg.get(alg);
  if (!key) {
    key = importJWK({ ...jwk, ext: true }, alg);
    byAlg.set(alg, key);
  }
  return key;
}

async function verifyWith(token: string, jwt: ParsedJwt, keys: readonly JWK[]): Promise<boolean> {
  for (const jwk of keys) {
    if (!keyFits(jwk, jwt.alg)) continue;
    try {
      await compactVerify(token, await importKey(jwk, jwt.alg), { algorithms: [jwt.alg] });
      return true;
    } catch {
      // A wrong key or a key that does not import: try the next candidate, as jwt_verify_lib does.
    }
  }
  return false;
}

export interface VerifyOptions {
  nowSeconds: number;
  clockSkewSeconds: number;
}

/** Verifies one extracted token for one provider whose keys come from `keys`. */
export async function verifyToken(
  token: string,
  provider: JwtProvider,
  keys: KeySource | undefined,
  opts: VerifyOptions,
): Promise<TokenResult> {
  const parsed = parseJwt(token);
  if (!parsed.ok) return parsed;
  const { jwt } = parsed;
  if (jwt.payload.iss !== provider.rule.issuer) return fail("JWT_UNKNOWN_ISSUER");

  const { nowSeconds: now, clockSkewSeconds: skew } = opts;
  if (jwt.payload.nbf !== undefined && now + skew < jwt.payload.nbf) return fail("JWT_NOT_YET_VALID");
  if (jwt.payload.exp && now > jwt.payload.exp + skew) return fail("JWT_EXPIRED");

  if (provider.audiences.size > 0) {
    const aud = jwt.payload.aud;
    const list = aud === undefined ? [] : Array.isArray(aud) ? aud : [aud];
    if (!list.some((a) => provider.audiences.has(sanitizeAudience(a))))
      return fail("JWT_AUDIENCE_NOT_ALLOWED");
  }

  if (!keys) return fail("JWKS_PARSE_ERROR");
  let set: JSONWebKeySet;
  try {
    set = await keys.keys();
  } catch (err) {
    if (isJwksFetchError(err)) return fail("JWKS_FETCH_FAILED");
    throw err;
  }
  let matching = candidates(set, jwt);
  const kidKnown = jwt.kid === undefined || set.keys.some((k) => k.kid === jwt.kid);
  if (matching.length === 0 || !kidKnown) {
    // The issuer may have rotated keys since the last fetch; ask again (rate-limited).
    const fresher = await keys.refresh();
    if (fresher) {
      set = fresher;
      matching = candidates(set, jwt);
    }
  }
  if (matching.length === 0) return fail("JWKS_KID_ALG_MISMATCH");
  return (await verifyWith(token, jwt, matching)) ? parsed : fail("JWT_VERIFICATION_FAILED");
}
