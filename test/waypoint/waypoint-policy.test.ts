// L7 AuthorizationPolicy and RequestAuthentication at a waypoint on 127.28.x.y, as Istio's security
// tasks show them: allow/deny by principal, method, path template and header; JWT 401 for a bad
// token, 403 when a request principal is required and there is no token, 200 with a valid token.

import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks } from "../utils/socks.js";

const CLIENT = "127.28.1.10";
const OTHER = "127.28.1.11";
const ISSUER = "https://issuer.example";

let t: TestMesh;
let sign: (claims: Record<string, unknown>, opts?: { exp?: string }) => Promise<string>;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
  sign = (claims, opts = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer(ISSUER)
      .setSubject("alice")
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? "10m")
      .sign(privateKey);
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.28.1.1"),
      node("node-b", "127.28.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({ name: "other", namespace: "demo", node: "node-a", ip: OTHER, sa: "other" }),
      pod({
        name: "httpbin",
        namespace: "demo",
        node: "node-b",
        ip: "127.28.2.10",
        sa: "httpbin",
        labels: { app: "httpbin" },
        ports: [{ containerPort: 8000 }],
      }),
      service({
        name: "httpbin",
        namespace: "demo",
        vip: "127.28.100.1",
        selector: { app: "httpbin" },
        ports: [{ port: 8000, targetPort: 8000, name: "http" }],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.28.2.40 }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
    "20-policy.yaml": docs(
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: httpbin-viewer, namespace: demo }
spec:
  targetRefs: [{ kind: Service, group: "", name: httpbin }]
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/demo/sa/client"] } }]
      to: [{ operation: { methods: ["GET"], paths: ["/api/{*}", "/headers"] } }]
    - from: [{ source: { requestPrincipals: ["${ISSUER}/alice"] } }]
      to: [{ operation: { paths: ["/secure/*"] } }]
      when: [{ key: "request.auth.claims[groups]", values: ["admins"] }]
`,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: block-header, namespace: demo }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: DENY
  rules:
    - when: [{ key: "request.headers[x-block]", values: ["yes"] }]
`,
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: demo }
spec:
  targetRefs: [{ kind: Service, group: "", name: httpbin }]
  jwtRules:
    - issuer: "${ISSUER}"
      jwks: '${JSON.stringify({ keys: [jwk] })}'
`,
    ),
  });
}, 30_000);
afterAll(async () => t?.stop());

function call(from: string, method: string, path: string, headers: Record<string, string> = {}) {
  return httpViaSocks(from, { host: "httpbin.demo.svc.cluster.local", port: 8000, method, path, headers });
}

describe("L7 AuthorizationPolicy at the waypoint", () => {
  it("allows by principal, method and path template; denies the rest with 403 RBAC: access denied", async () => {
    await eventually(async () => expect((await call(CLIENT, "GET", "/api/items")).status).toBe(200));
    expect((await call(CLIENT, "GET", "/headers")).status).toBe(200);
    const denied = await call(OTHER, "GET", "/api/items");
    expect(denied.status).toBe(403);
    expect(denied.body).toBe("RBAC: access denied");
    expect((await call(CLIENT, "POST", "/api/items")).status).toBe(403);
    expect((await call(CLIENT, "GET", "/api/items/deeper")).status).toBe(403); // {*} is one segment
    expect((await call(CLIENT, "GET", "/api/../admin")).status).toBe(403); // normalized to /admin
  });

  it("a DENY on the Gateway blocks by header before any ALLOW", async () => {
    expect((await call(CLIENT, "GET", "/api/items", { "x-block": "yes" })).status).toBe(403);
    expect((await call(CLIENT, "GET", "/api/items", { "x-block": "no" })).status).toBe(200);
  });
});

describe("RequestAuthentication (JWT)", () => {
  it("401 for an invalid token, 403 without one where a request principal is required, 200 with a valid token and claim", async () => {
    const bad = await call(OTHER, "GET", "/secure/data", { authorization: "Bearer not.a.jwt" });
    expect(bad.status).toBe(401);
    const expired = await sign({ groups: ["admins"] }, { exp: "-10m" });
    expect((await call(OTHER, "GET", "/secure/data", { authorization: `Bearer ${expired}` })).status).toBe(
      401,
    );
    expect((await call(OTHER, "GET", "/secure/data")).status).toBe(403);
    const user = await sign({ groups: ["users"] });
    expect((await call(OTHER, "GET", "/secure/data", { authorization: `Bearer ${user}` })).status).toBe(403);
    const admin = await sign({ groups: ["admins"] });
    const ok = await call(OTHER, "GET", "/secure/data", { authorization: `Bearer ${admin}` });
    expect(ok.status).toBe(200);
    // The token is not forwarded to the app (forwardOriginalToken defaults to false).
    expect(ok.json<{ headers: Record<string, string> }>().headers.authorization).toBeUndefined();
  });
});
