// ServiceEntries on 127.33.x.y: servers outside the mesh reached through ztunnel as Istio's egress
// patterns do. STATIC endpoints load-balanced by the entry's VIP and by its hostname, a DNS
// endpoint the proxy resolves when it connects, a NONE entry passed through to the address the
// client dialed (named in the access log), an entry bound to a waypoint, where an L7
// AuthorizationPolicy on the waypoint applies to the external service's requests, and TLS
// origination there (DestinationRule tls.mode SIMPLE): plain HTTP from the app, HTTPS outside.

import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { apiserver } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, type TempDir, tempDir } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks } from "../utils/socks.js";

const CLIENT = "127.33.1.10";
const STATIC_IP = "127.33.9.10";
const NONE_IP = "127.33.9.12";
const HTTPS_IP = "127.33.9.13";

let t: TestMesh;
let nonePort = 0;
let certs: TempDir;
const servers: Server[] = [];

/** An HTTP server outside the mesh that says who it is and what it was asked. */
async function external(name: string, host: string): Promise<number> {
  const server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ server: name, path: req.url, host: req.headers.host }));
  });
  servers.push(server);
  // "::" with dual stack takes both 127.0.0.1 and ::1: whichever "localhost" resolves to here.
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  const staticPort = await external("static", STATIC_IP);
  const dnsPort = await external("dns", "::");
  nonePort = await external("none", NONE_IP);
  // An HTTPS server outside the mesh, with a certificate for secure.external.test from its own CA.
  const pki = await apiserver.createPki({ ips: [], dns: ["secure.external.test"] });
  certs = await tempDir("ambient-egress-ca-");
  const caFile = join(certs.path, "ca.pem");
  await writeFile(caFile, pki.caPem);
  const https = createHttpsServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ server: "https", path: req.url, encrypted: true }));
  });
  servers.push(https);
  await new Promise<void>((resolve) => https.listen(0, HTTPS_IP, resolve));
  const httpsPort = (https.address() as AddressInfo).port;
  const seeded = docs(
    namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
    namespace("egress", { "istio.io/dataplane-mode": "ambient" }),
    node("node-a", "127.33.1.1"),
    node("node-b", "127.33.2.1"),
    pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
  );
  t = await startMesh({
    "00-mesh.yaml": seeded,
    "10-entries.yaml": docs(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: egress }
spec:
  hosts: [db.external.test]
  addresses: [127.33.100.1]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{ address: ${STATIC_IP}, ports: { http: ${staticPort} } }]
`,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: egress }
spec:
  hosts: [api.external.test]
  addresses: [127.33.100.2]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: DNS
  endpoints: [{ address: localhost, ports: { http: ${dnsPort} } }]
`,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: anything, namespace: egress }
spec:
  hosts: [none.external.test]
  addresses: [${NONE_IP}]
  ports: [{ number: ${nonePort}, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: NONE
`,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: guarded
  namespace: egress
  labels: { istio.io/use-waypoint: egress-waypoint }
spec:
  hosts: [guarded.external.test]
  addresses: [127.33.100.3]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{ address: ${STATIC_IP}, ports: { http: ${staticPort} } }]
`,
    ),
    "15-tls-origination.yaml": docs(
      ...["secure", "wrong-san"].map(
        (name) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: egress
  labels: { istio.io/use-waypoint: egress-waypoint }
spec:
  hosts: [${name}.external.test]
  addresses: [127.33.100.${name === "secure" ? 4 : 5}]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${httpsPort} }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{ address: ${HTTPS_IP} }]
`,
      ),
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: secure, namespace: egress }
spec:
  host: secure.external.test
  trafficPolicy:
    tls: { mode: SIMPLE, sni: secure.external.test, caCertificates: ${caFile} }
`,
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: wrong-san, namespace: egress }
spec:
  host: wrong-san.external.test
  trafficPolicy:
    tls: { mode: SIMPLE, sni: secure.external.test, caCertificates: ${caFile}, subjectAltNames: [billing.example.com] }
`,
    ),
    "20-waypoint.yaml": docs(
      `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: egress-waypoint, namespace: egress }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.33.2.40 }]
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
      allowedRoutes: { namespaces: { from: All } }
`,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: egress }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: egress-waypoint }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin", "/admin/*"] } }] }]
`,
    ),
  });
}, 30_000);

afterAll(async () => {
  await t?.stop();
  for (const s of servers) s.close();
  await certs?.cleanup();
});

function get(host: string, port: number, path = "/") {
  return httpViaSocks(CLIENT, { host, port, method: "GET", path });
}

describe("ServiceEntry", () => {
  it("STATIC: the entry's VIP and its hostname reach the endpoint on its mapped port", async () => {
    const byVip = await get("127.33.100.1", 80, "/by-vip");
    expect(byVip.status).toBe(200);
    expect(byVip.json<{ server: string; path: string }>()).toMatchObject({
      server: "static",
      path: "/by-vip",
    });
    const byName = await get("db.external.test", 80, "/by-name");
    expect(byName.json<{ server: string }>().server).toBe("static");
    const [log] = logsWith(t.logs, { component: "access", "dst.service": "db.external.test" });
    expect(log).toBeDefined();
  });

  it("DNS: an endpoint named by a hostname is resolved by ztunnel when it connects", async () => {
    const res = await get("127.33.100.2", 80, "/resolved");
    expect(res.status).toBe(200);
    expect(res.json<{ server: string }>().server).toBe("dns");
  });

  it("NONE: the connection goes where the client sent it, and the access log names the service", async () => {
    const res = await get(NONE_IP, nonePort, "/passthrough");
    expect(res.json<{ server: string; path: string }>()).toMatchObject({
      server: "none",
      path: "/passthrough",
    });
    await eventually(() =>
      expect(logsWith(t.logs, { component: "access", "dst.service": "none.external.test" })).not.toEqual([]),
    );
  });

  it("with istio.io/use-waypoint: requests go through the waypoint and its AuthorizationPolicy applies", async () => {
    await eventually(async () => expect((await get("guarded.external.test", 80, "/ok")).status).toBe(200));
    const denied = await get("guarded.external.test", 80, "/admin/users");
    expect(denied.status).toBe(403);
    expect(denied.body).toBe("RBAC: access denied");
    // However the request names its target: a Host header naming the unguarded entry, or a path
    // that normalizes to /admin, is still the guarded entry's request, and denied.
    for (const [path, headers] of [
      ["/admin/users", { host: "db.external.test" }],
      ["/x/../admin/users", {}],
      ["/admin/./users", {}],
    ] as const) {
      const res = await httpViaSocks(CLIENT, {
        host: "guarded.external.test",
        port: 80,
        method: "GET",
        path,
        headers,
      });
      expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(403);
    }
    // The unguarded entry to the same server is not behind the waypoint: no policy there.
    expect((await get("db.external.test", 80, "/admin/users")).status).toBe(200);
  });

  it("TLS origination at the waypoint: plain HTTP from the app, HTTPS verified against the rule's CA", async () => {
    const res = await eventually(async () => {
      const r = await get("secure.external.test", 80, "/over-tls");
      expect(r.status).toBe(200);
      return r;
    });
    expect(res.json<{ server: string; path: string }>()).toMatchObject({
      server: "https",
      path: "/over-tls",
    });
    // The same server, but the rule asks for a name its certificate does not carry: refused, 503.
    const refused = await get("wrong-san.external.test", 80, "/over-tls");
    expect(refused.status).toBe(503);
    expect(
      t.logs.some((l) => JSON.stringify(l).includes("none of billing.example.com")),
      "the waypoint says why",
    ).toBe(true);
  });
});
