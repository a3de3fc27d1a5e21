// The ingress gateway on 127.36.x.y, driven by the real curl from outside the mesh, as Istio's
// tutorials do: an Istio Gateway served by the pod labelled istio=ingressgateway, a VirtualService
// bound to it, certificates from kubernetes.io/tls Secrets chosen by SNI, an HTTP → HTTPS
// redirect, TLS passthrough by SNI, a TCP server, a policy enforced at the gateway itself, the
// gateway's own identity seen by the destination's ztunnel, and a Gateway API Gateway of class
// istio with an HTTPRoute, a TLSRoute (passthrough to a mesh service) and a TCPRoute.

import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { apiserver } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service, type TempDir, tempDir } from "../utils/index.js";
import { logsWith, metricValue, scrape, startMesh, type TestMesh } from "../utils/mesh.js";

const run = promisify(execFile);
const GATEWAY_IP = "127.36.1.50";
const API_GATEWAY_IP = "127.36.1.60";
const PASSTHROUGH_BACKEND = "127.36.9.10";
/** A mesh pod with no app of the mesh's own: the test's HTTPS server listens on its address. */
const MESH_TLS_POD = "127.36.2.20";

let t: TestMesh;
let certs: TempDir;
let bookinfoCa = "";
let shopCa = "";
let backendCa = "";
const backends: Server[] = [];

function tlsSecret(name: string, ns: string, certPem: string, keyPem: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return `apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: ${ns} }
type: kubernetes.io/tls
data:
  tls.crt: ${b64(certPem)}
  tls.key: ${b64(keyPem)}
`;
}

/** curl, as a user outside the mesh runs it: status, headers and body. */
async function curl(
  url: string,
  args: string[] = [],
): Promise<{ status: number; body: string; headers: string; exitCode: number }> {
  try {
    const { stdout } = await run("curl", ["-sS", "--max-time", "10", "-D", "-", "-o", "-", ...args, url], {
      timeout: 15_000,
    });
    const split = stdout.indexOf("\r\n\r\n");
    const headers = stdout.slice(0, split);
    const status = Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1] ?? 0);
    return { status, headers, body: stdout.slice(split + 4), exitCode: 0 };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { status: 0, headers: "", body: e.stderr ?? "", exitCode: e.code ?? -1 };
  }
}

beforeAll(async () => {
  certs = await tempDir("ambient-ingress-");
  const bookinfo = await apiserver.createPki({ ips: [], dns: ["bookinfo.example.com"] });
  const shop = await apiserver.createPki({ ips: [], dns: ["shop.example.com"] });
  const secure = await apiserver.createPki({ ips: [], dns: ["secure.example.com"] });
  bookinfoCa = join(certs.path, "bookinfo-ca.pem");
  shopCa = join(certs.path, "shop-ca.pem");
  backendCa = join(certs.path, "backend-ca.pem");
  await writeFile(bookinfoCa, bookinfo.caPem);
  await writeFile(shopCa, shop.caPem);
  await writeFile(backendCa, secure.caPem);
  // A TLS server the gateway passes connections to without decrypting them (a mesh-external
  // endpoint of a ServiceEntry): only it holds secure.example.com's key.
  const tlsServer = async (name: string, ip: string) => {
    const server = createHttpsServer({ cert: secure.serverCertPem, key: secure.serverKeyPem }, (req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ server: name, path: req.url }));
    });
    backends.push(server);
    await new Promise<void>((resolve) => server.listen(0, ip, resolve));
    return (server.address() as AddressInfo).port;
  };
  const backendPort = await tlsServer("passthrough-backend", PASSTHROUGH_BACKEND);
  const meshTlsPort = await tlsServer("mesh-tls-backend", MESH_TLS_POD);

  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("bookinfo", { "istio.io/dataplane-mode": "ambient" }),
      namespace("istio-system"),
      node("node-a", "127.36.1.1"),
      node("node-b", "127.36.2.1"),
      pod({
        name: "istio-ingressgateway",
        namespace: "istio-system",
        node: "node-a",
        ip: GATEWAY_IP,
        sa: "istio-ingressgateway",
        labels: { istio: "ingressgateway", app: "istio-ingressgateway" },
      }),
      pod({
        name: "productpage-v1",
        namespace: "bookinfo",
        node: "node-b",
        ip: "127.36.2.10",
        sa: "bookinfo-productpage",
        labels: { app: "productpage" },
        ports: [{ containerPort: 9080 }],
      }),
      pod({
        name: "reviews-v1",
        namespace: "bookinfo",
        node: "node-b",
        ip: "127.36.2.11",
        sa: "bookinfo-reviews",
        labels: { app: "reviews" },
        ports: [{ containerPort: 9080 }],
      }),
      service({
        name: "productpage",
        namespace: "bookinfo",
        vip: "127.36.100.1",
        selector: { app: "productpage" },
        ports: [{ port: 9080, name: "http" }],
      }),
      pod({
        name: "secure-backend",
        namespace: "bookinfo",
        node: "node-b",
        ip: MESH_TLS_POD,
        sa: "secure-backend",
        labels: { app: "secure-backend" },
      }),
      service({
        name: "secure-backend",
        namespace: "bookinfo",
        vip: "127.36.100.3",
        selector: { app: "secure-backend" },
        ports: [{ port: 443, name: "tls", targetPort: meshTlsPort }],
      }),
      service({
        name: "reviews",
        namespace: "bookinfo",
        vip: "127.36.100.2",
        selector: { app: "reviews" },
        ports: [{ port: 9080, name: "http" }],
      }),
    ),
    "10-secrets.yaml": docs(
      tlsSecret("bookinfo-cert", "istio-system", bookinfo.serverCertPem, bookinfo.serverKeyPem),
      tlsSecret("shop-cert", "istio-system", shop.serverCertPem, shop.serverKeyPem),
    ),
    "20-gateway.yaml": docs(
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bookinfo-gateway, namespace: bookinfo }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8080, name: http, protocol: HTTP }
      hosts: ["*"]
    - port: { number: 8081, name: http-redirect, protocol: HTTP }
      hosts: [bookinfo.example.com]
      tls: { httpsRedirect: true }
    - port: { number: 8443, name: https-bookinfo, protocol: HTTPS }
      hosts: [bookinfo.example.com]
      tls: { mode: SIMPLE, credentialName: bookinfo-cert }
    - port: { number: 8443, name: https-shop, protocol: HTTPS }
      hosts: [shop.example.com]
      tls: { mode: SIMPLE, credentialName: shop-cert }
    - port: { number: 8444, name: tls-passthrough, protocol: TLS }
      hosts: [secure.example.com]
      tls: { mode: PASSTHROUGH }
    - port: { number: 8445, name: tcp, protocol: TCP }
      hosts: ["*"]
`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: raw-tcp, namespace: bookinfo }
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  tcp:
    - match: [{ port: 8445 }]
      route: [{ destination: { host: reviews, port: { number: 9080 } } }]
`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bookinfo, namespace: bookinfo }
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
    - match: [{ uri: { prefix: /reviews } }]
      route: [{ destination: { host: reviews, port: { number: 9080 } } }]
    - match: [{ uri: { exact: /productpage } }, { uri: { prefix: /static } }]
      route: [{ destination: { host: productpage, port: { number: 9080 } } }]
`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: bookinfo }
spec:
  hosts: [shop.example.com]
  gateways: [bookinfo/bookinfo-gateway]
  http:
    - route: [{ destination: { host: reviews.bookinfo.svc.cluster.local, port: { number: 9080 } } }]
`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: secure, namespace: bookinfo }
spec:
  hosts: [secure.example.com]
  gateways: [bookinfo-gateway]
  tls:
    - match: [{ port: 8444, sniHosts: [secure.example.com] }]
      route: [{ destination: { host: secure.example.com, port: { number: 443 } } }]
`,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: bookinfo }
spec:
  hosts: [secure.example.com]
  addresses: [127.36.100.9]
  ports: [{ number: 443, name: tls, protocol: TLS, targetPort: ${backendPort} }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{ address: ${PASSTHROUGH_BACKEND} }]
`,
    ),
    "30-policies.yaml": docs(
      // Only the ingress gateway may call productpage: its own identity reaches the destination.
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: productpage-from-gateway, namespace: bookinfo }
spec:
  selector: { matchLabels: { app: productpage } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: [cluster.local/ns/istio-system/sa/istio-ingressgateway] } }] }]
`,
      // Enforced by the gateway itself (its pod is not captured by ztunnel). On TCP (passthrough)
      // a DENY rule's HTTP fields are dropped, as istiod does, which would deny every connection
      // its ports cover: so it names the HTTP port.
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin-at-the-edge, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules: [{ to: [{ operation: { ports: ["8080"], paths: ["/reviews/admin*"] } }] }]
`,
    ),
    "40-gateway-api.yaml": docs(
      `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: public, namespace: bookinfo }
spec:
  gatewayClassName: istio
  addresses: [{ value: ${API_GATEWAY_IP} }]
  listeners:
    - name: http
      port: 8090
      protocol: HTTP
      hostname: api.example.com
    - name: tls
      port: 8091
      protocol: TLS
      hostname: "*.example.com"
      tls: { mode: Passthrough }
    - name: tcp
      port: 8092
      protocol: TCP
`,
      `apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: { name: secure, namespace: bookinfo }
spec:
  parentRefs: [{ name: public, sectionName: tls }]
  hostnames: [secure.example.com]
  rules: [{ backendRefs: [{ name: secure-backend, port: 443 }] }]
`,
      `apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: raw, namespace: bookinfo }
spec:
  parentRefs: [{ name: public, sectionName: tcp }]
  rules: [{ backendRefs: [{ name: reviews, port: 9080 }] }]
`,
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: api, namespace: bookinfo }
spec:
  parentRefs: [{ name: public }]
  hostnames: [api.example.com]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v2 } }]
      backendRefs: [{ name: reviews, port: 9080 }]
`,
    ),
  });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  for (const b of backends) b.close();
  await certs?.cleanup();
});

const servedBy = (r: { headers: string }) => /x-served-by: (\S+)/i.exec(r.headers)?.[1];

describe("ingress gateway (Istio Gateway + VirtualService)", () => {
  it("routes plain HTTP by path to the mesh services, and 404s what no route takes", async () => {
    const reviews = await eventually(async () => {
      const r = await curl(`http://${GATEWAY_IP}:8080/reviews/1`);
      expect(r.status).toBe(200);
      return r;
    });
    expect(servedBy(reviews)).toBe("bookinfo/reviews-v1");
    expect(JSON.parse(reviews.body)).toMatchObject({ path: "/reviews/1" });
    const page = await curl(`http://${GATEWAY_IP}:8080/productpage`);
    expect(page.status).toBe(200);
    expect(servedBy(page)).toBe("bookinfo/productpage-v1");
    expect((await curl(`http://${GATEWAY_IP}:8080/nothing-here`)).status).toBe(404);
  });

  it("forwards over HBONE with its own identity, which the destination's policy names", {
    timeout: 30_000,
  }, async () => {
    await eventually(async () =>
      expect((await curl(`http://${GATEWAY_IP}:8080/productpage`)).status).toBe(200),
    );
    // The destination's ztunnel verified the gateway's certificate and names its identity (its
    // line is written when the pooled connection closes, after the gateway's keep-alive idle).
    const log = await eventually(() => {
      const [l] = logsWith(t.logs, {
        process: "ztunnel",
        component: "access",
        "dst.workload": "productpage-v1",
      });
      expect(l).toBeDefined();
      return l!;
    }, 20_000);
    expect(log["src.identity"]).toBe("spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway");
  });

  it("reports its requests in Istio's metrics as their source, with the destination it routed to", async () => {
    await eventually(async () =>
      expect((await curl(`http://${GATEWAY_IP}:8080/reviews/m`)).status).toBe(200),
    );
    const text = await scrape(GATEWAY_IP);
    expect(
      metricValue(text, "istio_requests_total", {
        reporter: "source",
        source_workload: "istio-ingressgateway",
        source_principal: "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway",
        destination_service: "reviews.bookinfo.svc.cluster.local",
        destination_workload: "reviews-v1",
        response_code: "200",
      }),
    ).toBeGreaterThan(0);
  });

  it("enforces the AuthorizationPolicy that selects the gateway pod", async () => {
    await eventually(async () =>
      expect((await curl(`http://${GATEWAY_IP}:8080/reviews/1`)).status).toBe(200),
    );
    const denied = await curl(`http://${GATEWAY_IP}:8080/reviews/admin`);
    expect(denied.status).toBe(403);
    expect(denied.body).toBe("RBAC: access denied");
    // However the path is spelled.
    expect((await curl(`http://${GATEWAY_IP}:8080/reviews/x/../admin`, ["--path-as-is"])).status).toBe(403);
  });

  it("terminates TLS with the certificate the SNI names, several hosts on one port", async () => {
    const book = await eventually(async () => {
      const r = await curl(`https://bookinfo.example.com:8443/productpage`, [
        "--resolve",
        `bookinfo.example.com:8443:${GATEWAY_IP}`,
        "--cacert",
        bookinfoCa,
      ]);
      expect(r.status).toBe(200);
      return r;
    });
    expect(servedBy(book)).toBe("bookinfo/productpage-v1");
    // The request reached the app over HTTP/2 from curl (ALPN h2) or HTTP/1.1: either way routed.
    const shop = await curl(`https://shop.example.com:8443/anything`, [
      "--resolve",
      `shop.example.com:8443:${GATEWAY_IP}`,
      "--cacert",
      shopCa,
    ]);
    expect(shop.status).toBe(200);
    expect(servedBy(shop)).toBe("bookinfo/reviews-v1");
    // shop's CA does not vouch for bookinfo's certificate: the SNI chose a different one.
    const wrong = await curl(`https://bookinfo.example.com:8443/productpage`, [
      "--resolve",
      `bookinfo.example.com:8443:${GATEWAY_IP}`,
      "--cacert",
      shopCa,
    ]);
    expect(wrong.exitCode).not.toBe(0);
    // An SNI no server lists gets no handshake at all.
    const unknown = await curl(`https://other.example.com:8443/`, [
      "--resolve",
      `other.example.com:8443:${GATEWAY_IP}`,
      "-k",
    ]);
    expect(unknown.exitCode).not.toBe(0);
  });

  it("does not let one host's TLS connection front requests for another host", async () => {
    const fronted = await curl(`https://bookinfo.example.com:8443/anything`, [
      "--resolve",
      `bookinfo.example.com:8443:${GATEWAY_IP}`,
      "--cacert",
      bookinfoCa,
      "-H",
      "host: shop.example.com",
    ]);
    expect(fronted.status).toBe(404);
  });

  it("redirects HTTP to HTTPS on an httpsRedirect server", async () => {
    const r = await eventually(async () => {
      const res = await curl(`http://${GATEWAY_IP}:8081/productpage?x=1`, [
        "-H",
        "host: bookinfo.example.com",
      ]);
      expect(res.status).toBe(301);
      return res;
    });
    expect(r.headers).toMatch(/location: https:\/\/bookinfo\.example\.com\/productpage\?x=1/i);
  });

  it("passes TLS through by SNI without decrypting it", async () => {
    const r = await eventually(async () => {
      const res = await curl(`https://secure.example.com:8444/through`, [
        "--resolve",
        `secure.example.com:8444:${GATEWAY_IP}`,
        "--cacert",
        backendCa,
      ]);
      expect(res.status).toBe(200);
      return res;
    });
    expect(JSON.parse(r.body)).toMatchObject({ server: "passthrough-backend", path: "/through" });
  });

  it("copies a TCP server's bytes to the VirtualService's tcp route untouched", async () => {
    // curl speaks HTTP, but the gateway does not read it: whatever Host it names, reviews answers.
    const r = await eventually(async () => {
      const res = await curl(`http://${GATEWAY_IP}:8445/raw`, ["-H", "host: anything.invalid"]);
      expect(res.status).toBe(200);
      return res;
    });
    expect(servedBy(r)).toBe("bookinfo/reviews-v1");
    expect(JSON.parse(r.body)).toMatchObject({ path: "/raw", headers: { host: "anything.invalid" } });
  });

  it("closes a connection that is not TLS on a TLS port, and keeps serving", async () => {
    const plain = await curl(`http://${GATEWAY_IP}:8443/productpage`);
    expect(plain.status).toBe(0);
    expect((await curl(`http://${GATEWAY_IP}:8080/productpage`)).status).toBe(200);
  });
});

describe("ingress gateway (Gateway API, class istio)", () => {
  it("serves an HTTPRoute on the Gateway's address and listener hostname", async () => {
    const r = await eventually(async () => {
      const res = await curl(`http://${API_GATEWAY_IP}:8090/v2/x`, ["-H", "host: api.example.com"]);
      expect(res.status).toBe(200);
      return res;
    });
    expect(servedBy(r)).toBe("bookinfo/reviews-v1");
    expect((await curl(`http://${API_GATEWAY_IP}:8090/v2/x`, ["-H", "host: else.example.com"])).status).toBe(
      404,
    );
    expect((await curl(`http://${API_GATEWAY_IP}:8090/v1`, ["-H", "host: api.example.com"])).status).toBe(
      404,
    );
  });

  it("passes a TLSRoute's connections through by SNI to a mesh service over HBONE", async () => {
    const r = await eventually(async () => {
      const res = await curl(`https://secure.example.com:8091/in-mesh`, [
        "--resolve",
        `secure.example.com:8091:${API_GATEWAY_IP}`,
        "--cacert",
        backendCa,
      ]);
      expect(res.status).toBe(200);
      return res;
    });
    expect(JSON.parse(r.body)).toMatchObject({ server: "mesh-tls-backend", path: "/in-mesh" });
    // The listener takes *.example.com, but no route names other.example.com: closed.
    const other = await curl(`https://other.example.com:8091/`, [
      "--resolve",
      `other.example.com:8091:${API_GATEWAY_IP}`,
      "-k",
    ]);
    expect(other.exitCode).not.toBe(0);
  });

  it("sends a TCPRoute's connections to its backend", async () => {
    const r = await eventually(async () => {
      const res = await curl(`http://${API_GATEWAY_IP}:8092/tcp`);
      expect(res.status).toBe(200);
      return res;
    });
    expect(servedBy(r)).toBe("bookinfo/reviews-v1");
  });
});
