import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { L7Request } from "../model/request.js";
import { type AuthnResult, JwtAuthenticator } from "./authenticator.js";
import { JwksCache } from "./jwks.js";
import type { JwtRule, RequestAuthenticationObject } from "./jwt-rule.js";

// ---- keys, tokens, requests ----

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
interface Signer {
  privateKey: PrivateKey;
  jwk: JWK;
  alg: string;
  kid: string;
}

async function signer(alg: "ES256" | "RS256", kid: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg }, alg, kid };
}

const ISS = "https://idp.example.com";
const now = () => Math.floor(Date.now() / 1000);

async function token(s: Signer, claims: JWTPayload = {}, header: { kid?: string } = {}): Promise<string> {
  return new SignJWT({ iss: ISS, sub: "alice", exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: s.alg, kid: header.kid ?? s.kid })
    .sign(s.privateKey);
}

function request(over: Partial<L7Request> = {}): L7Request {
  return {
    method: "GET",
    scheme: "http",
    authority: "httpbin.foo:8000",
    path: "/get",
    headers: {},
    port: 8000,
    protocol: "http/1.1",
    source: { ip: "10.0.0.1", principal: "spiffe://cluster.local/ns/foo/sa/sleep" },
    destination: { host: "httpbin.foo.svc.cluster.local", ip: "10.96.0.10", port: 8000 },
    ...over,
  };
}

const bearer = (jwt: string) => request({ headers: { authorization: `Bearer ${jwt}` } });

function requestAuthn(...rules: JwtRule[]): RequestAuthenticationObject[] {
  return [{ metadata: { name: "jwt", namespace: "foo" }, spec: { jwtRules: rules } }];
}

let es: Signer;
let rs: Signer;
let forger: Signer;
let inline: (extra?: Partial<JwtRule>) => JwtRule;

beforeAll(async () => {
  es = await signer("ES256", "es-1");
  rs = await signer("RS256", "rs-1");
  forger = await signer("ES256", "es-1"); // same kid, another key
  inline = (extra = {}) => ({ issuer: ISS, jwks: JSON.stringify({ keys: [es.jwk, rs.jwk] }), ...extra });
});

function expectFailure(result: AuthnResult, status: number, reason?: string) {
  expect(result).toMatchObject({ ok: false, status, ...(reason ? { reason } : {}) });
}

// ---- behaviour ----

describe("JwtAuthenticator: verdicts", () => {
  it("accepts ES256 and RS256 tokens and names the request principal iss/sub", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    for (const s of [es, rs]) {
      const result = await authn.authenticate(bearer(await token(s)));
      expect(result).toMatchObject({ ok: true, principal: `${ISS}/alice`, claims: { sub: "alice" } });
    }
  });

  it("lets a request without a token through, without a principal", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    const result = await authn.authenticate(request());
    expect(result).toEqual({ ok: true, removeHeaders: [], addHeaders: {} });
    // Another scheme in Authorization is not a JWT either.
    expect(await authn.authenticate(request({ headers: { authorization: "Basic dTpw" } }))).toMatchObject({
      ok: true,
    });
  });

  it("refuses an expired token, but allows Envoy's 60 s clock skew", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    const expired = await authn.authenticate(bearer(await token(es, { exp: now() - 120 })));
    expectFailure(expired, 401, "Jwt is expired");
    expect(expired).toMatchObject({ code: "JWT_EXPIRED" });
    expect((expired as { wwwAuthenticate: string }).wwwAuthenticate).toBe(
      'Bearer realm="http://httpbin.foo:8000/get", error="invalid_token"',
    );
    expect(await authn.authenticate(bearer(await token(es, { exp: now() - 30 })))).toMatchObject({
      ok: true,
    });
  });

  it("refuses a token not yet valid", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    expectFailure(
      await authn.authenticate(bearer(await token(es, { nbf: now() + 300 }))),
      401,
      "Jwt not yet valid",
    );
  });

  it("refuses a wrong audience with 403, comparing audiences without scheme or trailing slash", async () => {
    const authn = new JwtAuthenticator(
      requestAuthn(inline({ audiences: ["svc-a", "https://api.example.com/"] })),
    );
    expectFailure(
      await authn.authenticate(bearer(await token(es, { aud: "svc-b" }))),
      403,
      "Audiences in Jwt are not allowed",
    );
    expectFailure(await authn.authenticate(bearer(await token(es))), 403, "Audiences in Jwt are not allowed");
    expect(await authn.authenticate(bearer(await token(es, { aud: ["x", "svc-a"] })))).toMatchObject({
      ok: true,
    });
    expect(await authn.authenticate(bearer(await token(es, { aud: "api.example.com" })))).toMatchObject({
      ok: true,
    });
  });

  it("refuses a token from an issuer no rule names", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    const result = await authn.authenticate(bearer(await token(es, { iss: "https://evil.example.com" })));
    expectFailure(result, 401, "Jwt issuer is not configured");
  });

  it("refuses a bad signature and an unknown kid", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    expectFailure(await authn.authenticate(bearer(await token(forger))), 401, "Jwt verification fails");
    expectFailure(
      await authn.authenticate(bearer(await token(es, {}, { kid: "nope" }))),
      401,
      "Jwks doesn't have key to match kid or alg from Jwt",
    );
    // A signature cut short is still a signature that does not verify.
    const good = await token(es);
    expectFailure(await authn.authenticate(bearer(good.slice(0, -4))), 401, "Jwt verification fails");
  });

  it.each([
    ["garbage", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"],
    ["a.b", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"],
    ["e30.e30.", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"],
    ["!!.e30.AA", "Jwt header is an invalid Base64url encoded"],
    ["bm90anNvbg.e30.AA", "Jwt header is an invalid JSON"],
    ["e30.e30.AA", "Jwt header [alg] field is required and must be a string"],
    [`${Buffer.from('{"alg":"none"}').toString("base64url")}.e30.AA`, "Jwt header [alg] is not supported"],
    [
      `${Buffer.from('{"alg":"ES256"}').toString("base64url")}.bm90anNvbg.AA`,
      "Jwt payload is an invalid JSON",
    ],
  ])("refuses a malformed token %j", async (jwt, reason) => {
    // A header without a prefix hands the value over verbatim (after "Bearer " Envoy would keep
    // only the base64url-and-dot run).
    const authn = new JwtAuthenticator(requestAuthn(inline({ fromHeaders: [{ name: "x-jwt" }] })));
    expectFailure(await authn.authenticate(request({ headers: { "x-jwt": jwt } })), 401, reason);
  });

  it("takes the base64url-and-dot run after the Bearer prefix", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    const jwt = await token(es);
    const req = request({ headers: { authorization: `Bearer  ${jwt}, Basic dTpw` } });
    expect(await authn.authenticate(req)).toMatchObject({ ok: true, principal: `${ISS}/alice` });
  });

  it("requires every token present to be valid", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    const req = request({
      path: `/get?access_token=${await token(forger)}`,
      headers: { authorization: `Bearer ${await token(es)}` },
    });
    expectFailure(await authn.authenticate(req), 401, "Jwt verification fails");
  });

  it("accepts a token for any of several rules, and names the issuer's principal", async () => {
    const other = "https://other.example.com";
    const authn = new JwtAuthenticator(
      requestAuthn(inline(), { issuer: other, jwks: JSON.stringify({ keys: [rs.jwk] }) }),
    );
    expect(await authn.authenticate(bearer(await token(rs, { iss: other, sub: "bob" })))).toMatchObject({
      ok: true,
      principal: `${other}/bob`,
    });
    expect(await authn.authenticate(bearer(await token(es)))).toMatchObject({
      ok: true,
      principal: `${ISS}/alice`,
    });
    expectFailure(
      await authn.authenticate(bearer(await token(es, { iss: "https://third.example.com" }))),
      401,
      "Jwt issuer is not configured",
    );
    // The other issuer's rule only trusts the RSA key.
    expectFailure(
      await authn.authenticate(bearer(await token(es, { iss: other }))),
      401,
      "Jwks doesn't have key to match kid or alg from Jwt",
    );
  });

  it("skips CORS preflights", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline()));
    const preflight = request({
      method: "OPTIONS",
      headers: {
        origin: "https://app",
        "access-control-request-method": "POST",
        authorization: "Bearer junk",
      },
    });
    const result = await authn.authenticate(preflight);
    expect(result).toMatchObject({ ok: true });
    expect(result).not.toHaveProperty("principal");
  });
});

describe("JwtAuthenticator: token locations", () => {
  it("reads fromHeaders with a prefix, and only there", async () => {
    const authn = new JwtAuthenticator(
      requestAuthn(inline({ fromHeaders: [{ name: "X-Jwt", prefix: "Token " }] })),
    );
    const jwt = await token(es);
    expect(await authn.authenticate(request({ headers: { "x-jwt": `Token ${jwt}` } }))).toMatchObject({
      ok: true,
      principal: `${ISS}/alice`,
      removeHeaders: ["x-jwt"],
    });
    // The default location is not read once locations are given: the token counts as missing.
    const elsewhere = await authn.authenticate(bearer(jwt));
    expect(elsewhere.ok && elsewhere.principal).toBe(undefined);
    // Without the prefix the header holds no token for this rule.
    const noPrefix = await authn.authenticate(request({ headers: { "x-jwt": jwt } }));
    expect(noPrefix.ok && noPrefix.principal).toBe(undefined);
  });

  it("reads a header without a prefix as the whole token", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline({ fromHeaders: [{ name: "x-jwt" }] })));
    expect(await authn.authenticate(request({ headers: { "x-jwt": await token(es) } }))).toMatchObject({
      ok: true,
    });
    expectFailure(await authn.authenticate(request({ headers: { "x-jwt": "junk" } })), 401);
  });

  it("reads fromParams, and leaves the parameter in place", async () => {
    const authn = new JwtAuthenticator(requestAuthn(inline({ fromParams: ["token"] })));
    const result = await authn.authenticate(request({ path: `/get?a=1&token=${await token(es)}` }));
    expect(result).toMatchObject({ ok: true, principal: `${ISS}/alice`, removeHeaders: [] });
  });

  it("reads the default access_token parameter and fromCookies", async () => {
    const byParam = new JwtAuthenticator(requestAuthn(inline()));
    expect(
      await byParam.authenticate(request({ path: `/get?access_token=${await token(es)}` })),
    ).toMatchObject({
      ok: true,
      principal: `${ISS}/alice`,
    });
    const byCookie = new JwtAuthenticator(requestAuthn(inline({ fromCookies: ["session"] })));
    const cookie = `theme=dark; session=${await token(rs)}`;
    expect(await byCookie.authenticate(request({ headers: { cookie } }))).toMatchObject({
      ok: true,
      principal: `${ISS}/alice`,
    });
  });
});

describe("JwtAuthenticator: header edits", () => {
  it("removes the Authorization header unless forwardOriginalToken", async () => {
    const jwt = await token(es);
    const dropped = await new JwtAuthenticator(requestAuthn(inline())).authenticate(bearer(jwt));
    expect(dropped).toMatchObject({ ok: true, removeHeaders: ["authorization"] });
    const kept = await new JwtAuthenticator(
      requestAuthn(inline({ forwardOriginalToken: true })),
    ).authenticate(bearer(jwt));
    expect(kept).toMatchObject({ ok: true, removeHeaders: [] });
  });

  it("writes the payload (base64url, as sent) and claims to headers, and strips client copies", async () => {
    const authn = new JwtAuthenticator(
      requestAuthn(
        inline({
          outputPayloadToHeader: "X-Jwt-Payload",
          outputClaimToHeaders: [
            { header: "x-sub", claim: "sub" },
            { header: "x-level", claim: "org.level" },
            { header: "x-admin", claim: "admin" },
            { header: "x-absent", claim: "nope" },
          ],
        }),
      ),
    );
    const jwt = await token(es, { org: { level: 3 }, admin: true, scope: "read write" });
    const result = await authn.authenticate(bearer(jwt));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.addHeaders).toEqual({
      "x-jwt-payload": jwt.split(".")[1],
      "x-sub": "alice",
      "x-level": "3",
      "x-admin": "true",
    });
    expect(
      JSON.parse(Buffer.from(result.addHeaders["x-jwt-payload"]!, "base64url").toString()),
    ).toMatchObject({
      sub: "alice",
    });
    expect(result.removeHeaders.sort()).toEqual([
      "authorization",
      "x-absent",
      "x-admin",
      "x-jwt-payload",
      "x-level",
      "x-sub",
    ]);
    // Authorization policies see OAuth scopes as a list, as Istio normalizes them.
    expect(result.claims?.["scope"]).toEqual(["read", "write"]);

    const forged = await authn.authenticate(request({ headers: { "x-jwt-payload": "forged" } }));
    expect(forged).toMatchObject({ ok: true });
    expect(forged.ok && forged.removeHeaders).toContain("x-jwt-payload");
  });
});

describe("JwtAuthenticator: jwksUri", () => {
  let server: Server;
  let base: string;
  let jwks: { keys: JWK[] };
  let status = 200;
  const hits = new Map<string, number>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.set(req.url ?? "", (hits.get(req.url ?? "") ?? 0) + 1);
      if (req.url === "/.well-known/openid-configuration") {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
        return;
      }
      res.statusCode = req.url === "/jwks" ? status : 404;
      res.setHeader("content-type", "application/json");
      res.end(status === 200 ? JSON.stringify(jwks) : "{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    hits.clear();
    status = 200;
    jwks = { keys: [es.jwk] };
  });

  it("fetches once, caches, and refetches for an unknown kid at most once per interval", async () => {
    let clock = 1_000_000;
    const cache = new JwksCache({ now: () => clock, unknownKidRefetchMs: 60_000, cacheDurationMs: 300_000 });
    const rules = requestAuthn({ issuer: ISS, jwksUri: `${base}/jwks` });
    const authn = new JwtAuthenticator(rules, { jwksCache: cache });

    for (let i = 0; i < 3; i++)
      expect(await authn.authenticate(bearer(await token(es)))).toMatchObject({ ok: true });
    expect(hits.get("/jwks")).toBe(1);

    // The issuer rotates in a new key; tokens name it before our copy is a minute old.
    const rotated = await signer("RS256", "rs-2");
    jwks = { keys: [es.jwk, rotated.jwk] };
    clock += 1_000;
    expectFailure(
      await authn.authenticate(bearer(await token(rotated))),
      401,
      "Jwks doesn't have key to match kid or alg from Jwt",
    );
    expect(hits.get("/jwks")).toBe(1);

    clock += 60_000;
    expect(await authn.authenticate(bearer(await token(rotated)))).toMatchObject({ ok: true });
    expect(hits.get("/jwks")).toBe(2);

    // Made-up kids right after cannot trigger another fetch.
    clock += 1_000;
    for (const kid of ["x1", "x2", "x3"]) {
      expectFailure(await authn.authenticate(bearer(await token(es, {}, { kid }))), 401);
    }
    expect(hits.get("/jwks")).toBe(2);

    // A rebuilt authenticator sharing the cache reuses the keys; expiry refetches them.
    const rebuilt = new JwtAuthenticator(rules, { jwksCache: cache });
    expect(await rebuilt.authenticate(bearer(await token(rotated)))).toMatchObject({ ok: true });
    expect(hits.get("/jwks")).toBe(2);
    clock += 300_001;
    expect(await rebuilt.authenticate(bearer(await token(es)))).toMatchObject({ ok: true });
    expect(hits.get("/jwks")).toBe(3);
  });

  it("refuses tokens while the key set cannot be fetched, and keeps a stale set over none", async () => {
    let clock = 0;
    const cache = new JwksCache({ now: () => clock, failedFetchRetryMs: 1_000, cacheDurationMs: 10_000 });
    const authn = new JwtAuthenticator(requestAuthn({ issuer: ISS, jwksUri: `${base}/jwks` }), {
      jwksCache: cache,
    });
    status = 503;
    expectFailure(await authn.authenticate(bearer(await token(es))), 401, "Jwks remote fetch is failed");
    expectFailure(await authn.authenticate(bearer(await token(es))), 401, "Jwks remote fetch is failed");
    expect(hits.get("/jwks")).toBe(1); // no second attempt within failedFetchRetryMs

    status = 200;
    clock += 1_000;
    expect(await authn.authenticate(bearer(await token(es)))).toMatchObject({ ok: true });
    status = 503;
    clock += 20_000;
    expect(await authn.authenticate(bearer(await token(es)))).toMatchObject({ ok: true });
    expect(hits.get("/jwks")).toBe(3);
  });

  it("times out a JWKS server that does not answer", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const uri = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/jwks`;
      const authn = new JwtAuthenticator(requestAuthn({ issuer: ISS, jwksUri: uri, timeout: "200ms" }));
      expectFailure(await authn.authenticate(bearer(await token(es))), 401, "Jwks remote fetch is failed");
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it("discovers jwks_uri from the issuer when a rule names no keys", async () => {
    const authn = new JwtAuthenticator(requestAuthn({ issuer: base }));
    expect(await authn.authenticate(bearer(await token(es, { iss: base })))).toMatchObject({
      ok: true,
      principal: `${base}/alice`,
    });
    expect(await authn.authenticate(bearer(await token(es, { iss: base })))).toMatchObject({ ok: true });
    expect(hits.get("/.well-known/openid-configuration")).toBe(1);
    expect(hits.get("/jwks")).toBe(1);
  });
});
