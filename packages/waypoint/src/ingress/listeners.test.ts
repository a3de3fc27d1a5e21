import { once } from "node:events";
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
} from "node:http";
import { connect as connectH2 } from "node:http2";
import { request as httpsRequest } from "node:https";
import { type AddressInfo, connect, createServer } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { CertificateAuthority, createMemoryLogger, type L7Resource } from "@ambient/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { L7Request } from "../model/request.js";
import type { TcpContext } from "../proxy/tcp.js";
import { eventually, stagesTo, testContext } from "../proxy/testing.js";
import { loadCredentials } from "./credentials.js";
import { IngressListeners, type IngressServing } from "./listeners.js";
import { compileIngressPlan } from "./plan.js";
import { gatewayH2Sender } from "./stages.js";
import { TlsRoutes } from "./tls-routes.js";

// A real IngressListeners on 127.0.0.1: a plaintext port and a TLS port (two terminated servers,
// one of them without a usable Secret, and a passthrough server no VirtualService routes), the
// request stages of proxy/testing.ts sending every request to a test app. No TcpContext: nothing
// here is passed through (a passthrough connection without a route is closed before it is used).

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

let app: HttpServer;
let root: string;
let httpPort: number;
let tlsPort: number;
let listeners: IngressListeners;
let setup: ReturnType<typeof testContext>;
let serving: IngressServing;
const seen: L7Request[] = [];
const { logger, records } = createMemoryLogger("debug");

function gatewayResource(servers: unknown[]): L7Resource {
  return {
    kind: "Gateway",
    apiVersion: "networking.istio.io/v1",
    namespace: "istio-system",
    name: "public",
    spec: { selector: { istio: "ingressgateway" }, servers },
    labels: {},
    annotations: {},
  };
}

function servingFor(resources: L7Resource[]): IngressServing {
  const plan = compileIngressPlan(resources, {
    namespace: "istio-system",
    labels: { istio: "ingressgateway" },
  });
  return {
    plan,
    credentials: loadCredentials(resources, logger),
    tlsRoutes: new TlsRoutes([], plan.gateways),
  };
}

beforeAll(async () => {
  app = createHttpServer((req, res) => {
    req.resume();
    res.setHeader("x-seen-proto", String(req.headers["x-forwarded-proto"]));
    req.on("end", () => res.end("ok"));
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  const stages = stagesTo((app.address() as AddressInfo).port);
  const route = stages.route;
  setup = testContext({
    ...stages,
    route: (req: L7Request) => {
      seen.push(req);
      return route(req);
    },
  });

  const opts = { trustDomain: "cluster.local" };
  const ca = await CertificateAuthority.fromPem(await CertificateAuthority.generateSelfSigned(opts), opts);
  root = ca.rootCertPem;
  const shop = await ca.issueServingCertificate({ dnsNames: ["shop.example.com"], ttlSeconds: 3600 });
  httpPort = await freePort();
  tlsPort = await freePort();
  serving = servingFor([
    gatewayResource([
      { port: { number: httpPort, protocol: "HTTP" }, hosts: ["*"] },
      {
        port: { number: tlsPort, protocol: "HTTPS" },
        hosts: ["shop.example.com"],
        tls: { mode: "SIMPLE", credentialName: "shop" },
      },
      {
        port: { number: tlsPort, protocol: "HTTPS" },
        hosts: ["secure.example.com"],
        tls: { mode: "SIMPLE", credentialName: "absent" },
      },
      {
        port: { number: tlsPort, protocol: "TLS" },
        hosts: ["pass.example.com"],
        tls: { mode: "PASSTHROUGH" },
      },
    ]),
    {
      kind: "Secret",
      apiVersion: "v1",
      namespace: "istio-system",
      name: "shop",
      spec: {
        type: "kubernetes.io/tls",
        data: { "tls.crt": b64(shop.certChainPem.join("")), "tls.key": b64(shop.privateKeyPem) },
      },
      labels: {},
      annotations: {},
    },
  ]);
  listeners = new IngressListeners({
    ip: "127.0.0.1",
    podNamespace: "istio-system",
    // As waypoint.ts wires it: only gRPC goes upstream over HTTP/2.
    http: { ...setup.ctx, sendH2: gatewayH2Sender(setup.ctx.sendH2, setup.ctx.sendHttp1) },
    tcp: undefined as unknown as TcpContext,
    logger,
    labels: () => ({}) as never,
  });
  await listeners.update(serving);
});

afterAll(async () => {
  await listeners?.close();
  setup?.close();
  app.closeAllConnections();
  await new Promise<void>((r) => app.close(() => r()));
});

/** GET / over HTTPS with this SNI; resolves with the body and the certificate's names. */
function httpsGet(
  servername: string,
): Promise<{ status?: number; body: string; san?: string; proto?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: tlsPort,
        path: "/x?y=1",
        servername,
        ca: root,
        // A client's own claim, which the gateway replaces with the connection's scheme.
        headers: { host: servername, connection: "close", "x-forwarded-proto": "gopher" },
        agent: false,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode,
            body,
            san: (res.socket as TLSSocket).getPeerCertificate?.().subjectaltname,
            proto: String(res.headers["x-seen-proto"]),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** GET over plaintext HTTP/1.1 on its own connection, closed after the answer. */
function httpGet(
  port: number,
  path: string,
  host = "shop.example.com",
): Promise<{ status?: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path, headers: { host, connection: "close" }, agent: false },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Writes `bytes` and resolves when the listener closes the connection (with what it answered). */
function closedAfter(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    socket.on("data", (c: Buffer) => {
      answer += c.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve(answer));
    socket.on("connect", () => socket.write(bytes));
    setTimeout(() => reject(new Error("the listener kept the connection open")), 5_000).unref();
  });
}

function refusals(): string[] {
  return records.filter((r) => r.msg === "ingress connection refused").map((r) => String(r.reason));
}

describe("IngressListeners", () => {
  it("opens one listener per port of the plan", () => {
    expect(listeners.ports()).toEqual([httpPort, tlsPort].sort((a, b) => a - b));
  });

  it("serves plaintext HTTP/1.1 on an HTTP port", async () => {
    seen.length = 0;
    expect(await httpGet(httpPort, "/plain")).toEqual({ status: 200, body: "ok" });
    expect(seen[0]).toMatchObject({
      scheme: "http",
      authority: "shop.example.com",
      path: "/plain",
      port: httpPort,
    });
    expect(seen[0]?.tls).toBeUndefined();
  });

  it("terminates TLS with the certificate the SNI picks and hands the SNI to the request stages", async () => {
    seen.length = 0;
    const res = await httpsGet("shop.example.com");
    expect(res).toMatchObject({ status: 200, body: "ok" });
    expect(res.san).toBe("DNS:shop.example.com");
    // The app learns the client used https (X-Forwarded-Proto from the connection, not the client).
    expect(res.proto).toBe("https");
    expect(seen[0]).toMatchObject({
      scheme: "https",
      tls: { serverName: "shop.example.com" },
      path: "/x?y=1",
    });
  });

  it("speaks HTTP/2 when the client's ALPN offers h2", async () => {
    const session = connectH2(`https://127.0.0.1:${tlsPort}`, { servername: "shop.example.com", ca: root });
    try {
      const stream = session.request({ ":path": "/h2", ":authority": "shop.example.com" });
      const [headers] = (await once(stream, "response")) as [Record<string, unknown>];
      expect(headers[":status"]).toBe(200);
      stream.resume();
      await once(stream, "end");
      expect(session.alpnProtocol).toBe("h2");
      // A client outside the mesh gets a bound on its concurrent streams.
      expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
    } finally {
      session.close();
    }
  });

  it.each<[string, string | Buffer, string]>([
    [
      "an HTTP request",
      "GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
      "the first byte is not a TLS handshake record",
    ],
    [
      "random bytes",
      Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42, 0x99, 0x01]),
      "the first byte is not a TLS handshake record",
    ],
    [
      "a ServerHello",
      Buffer.from([0x16, 3, 3, 0, 4, 0x02, 0, 0, 0]),
      "the first handshake message is not a ClientHello",
    ],
    [
      "an oversized record",
      Buffer.from([0x16, 3, 1, 0xff, 0xff]),
      "a TLS record longer than the protocol allows",
    ],
  ])("%s on the TLS port is closed, and the port keeps serving", async (_name, bytes, reason) => {
    expect(await closedAfter(tlsPort, bytes)).toBe("");
    await eventually(() => expect(refusals()).toContain(reason));
    expect(await httpsGet("shop.example.com")).toMatchObject({ status: 200, body: "ok" });
  });

  it("a client that hangs up inside its ClientHello is closed, and the port keeps serving", async () => {
    await new Promise<void>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: tlsPort }, () =>
        socket.end(Buffer.from([0x16, 3, 1, 0, 200, 1])),
      );
      socket.on("error", () => {});
      socket.on("close", () => resolve());
    });
    await eventually(() => expect(refusals()).toContain("closed before a ClientHello"));
    expect(await httpsGet("shop.example.com")).toMatchObject({ status: 200 });
  });

  it.each<[string, string, RegExp]>([
    ["an SNI no server covers", "other.example.com", /^no server on port \d+ for SNI other\.example\.com$/],
    [
      "a server whose Secret is missing",
      "secure.example.com",
      /^Secret istio-system\/absent is missing or unusable$/,
    ],
    [
      "a passthrough SNI no VirtualService routes",
      "pass.example.com",
      /^no VirtualService tls route for SNI pass\.example\.com$/,
    ],
  ])("%s: the handshake is refused", async (_name, servername, reason) => {
    const err = await new Promise<Error | undefined>((resolve) => {
      const c = connectTls({ host: "127.0.0.1", port: tlsPort, servername, ca: root });
      c.on("secureConnect", () => {
        c.destroy();
        resolve(undefined);
      });
      c.on("error", resolve);
      c.on("close", () => resolve(new Error("closed")));
    });
    expect(err).toBeInstanceOf(Error);
    await eventually(() => expect(refusals().some((r) => reason.test(r))).toBe(true));
  });

  it("a client without SNI gets no certificate when no server takes any host", async () => {
    const err = await new Promise<Error | undefined>((resolve) => {
      const c = connectTls({ host: "127.0.0.1", port: tlsPort, ca: root });
      c.on("secureConnect", () => resolve(undefined));
      c.on("error", resolve);
    });
    expect(err).toBeInstanceOf(Error);
    await eventually(() => expect(refusals()).toContain(`no server on port ${tlsPort} for SNI (none)`));
  });

  it("a TLS ClientHello on the plaintext port is refused as not HTTP", async () => {
    const hello = Buffer.from([0x16, 3, 1, 0, 5, 1, 0, 0, 1, 3]);
    expect(await closedAfter(httpPort, hello)).toBe("");
    await eventually(() => expect(refusals().some((r) => r.startsWith("not HTTP"))).toBe(true));
  });
});

describe("IngressListeners.update", () => {
  it("closes the ports a new plan drops and opens the ones it adds", async () => {
    const [a, b] = [await freePort(), await freePort()];
    const own = new IngressListeners({
      ip: "127.0.0.1",
      podNamespace: "istio-system",
      // As waypoint.ts wires it: only gRPC goes upstream over HTTP/2.
      http: { ...setup.ctx, sendH2: gatewayH2Sender(setup.ctx.sendH2, setup.ctx.sendHttp1) },
      tcp: undefined as unknown as TcpContext,
      logger,
      labels: () => ({}) as never,
    });
    try {
      await own.update(
        servingFor([gatewayResource([{ port: { number: a, protocol: "HTTP" }, hosts: ["*"] }])]),
      );
      expect(own.ports()).toEqual([a]);
      await own.update(
        servingFor([gatewayResource([{ port: { number: b, protocol: "HTTP" }, hosts: ["*"] }])]),
      );
      expect(own.ports()).toEqual([b]);
      expect(await httpGet(b, "/")).toEqual({ status: 200, body: "ok" });
      await expect(httpGet(a, "/")).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await own.close();
    }
    expect(own.ports()).toEqual([]);
  });
});

describe("IngressListeners.close", () => {
  it("ends the connections clients still hold open (an idle keep-alive, a silent client)", async () => {
    const port = await freePort();
    const own = new IngressListeners({
      ip: "127.0.0.1",
      podNamespace: "istio-system",
      http: setup.ctx,
      tcp: undefined as unknown as TcpContext,
      logger,
      labels: () => ({}) as never,
      sniff: { timeoutMs: 0 },
    });
    await own.update(
      servingFor([gatewayResource([{ port: { number: port, protocol: "HTTP" }, hosts: ["*"] }])]),
    );
    // One connection kept alive after its answer, one that never sends a byte.
    const keptAlive = connect({ host: "127.0.0.1", port });
    const silent = connect({ host: "127.0.0.1", port });
    const closed = [keptAlive, silent].map((s) => {
      s.on("error", () => {});
      return once(s, "close");
    });
    await Promise.all([once(keptAlive, "connect"), once(silent, "connect")]);
    keptAlive.write("GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n");
    const [first] = (await once(keptAlive, "data")) as [Buffer];
    expect(first.toString()).toMatch(/^HTTP\/1\.1 200 /);
    // Resolves only once every listener is closed, which needs its connections gone.
    await own.close();
    await Promise.all(closed);
    expect(own.ports()).toEqual([]);
  });
});
