import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { hasCode, type Service, WaypointErrorCode, type Workload } from "@ambient/core";
import { ProxyState } from "@ambient/dataplane";
import { testService, testWorkload } from "@ambient/dataplane/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClusterStage } from "./cluster-stage.js";
import { DEFAULT_RETRY, defaultStages } from "./default-stages.js";
import type { L7Request } from "./model/request.js";
import type { StreamInfo } from "./proxy/http.js";
import type { AttemptRequest } from "./proxy/request/attempt.js";
import { ReplayBody } from "./proxy/request/body.js";
import { Exchange } from "./proxy/request/exchange.js";
import { forward } from "./proxy/request/forward.js";
import type { ForwardPlan } from "./proxy/request/route.js";
import { http1Sender } from "./proxy/request/send-http1.js";
import { RequestClock } from "./proxy/request/timers.js";
import type { Stages } from "./proxy/stages.js";
import { plainDeps } from "./proxy/testing.js";
import { UpstreamAgents } from "./proxy/upstream-agents.js";

const WAYPOINT = { address: { network: "", address: Uint8Array.of(127, 0, 0, 40) }, hboneMtlsPort: 15008 };

/**
 * A ServiceEntry with `resolution: NONE` as Istio sends it: PASSTHROUGH, its addresses (here our
 * loopback app) as VIPs, bound to the waypoint.
 */
function passthroughService(vip: string): Service {
  return testService({
    name: "httpbin.example",
    namespace: "egress",
    hostname: "httpbin.example",
    vips: [vip],
    ports: [{ servicePort: 80, targetPort: 80 }],
    waypoint: WAYPOINT,
    loadBalancing: { routingPreference: [], mode: "PASSTHROUGH" },
  });
}

/** A ServiceEntry with `resolution: DNS`: a service whose endpoint is a hostname. */
function dnsService(): { service: Service; endpoint: Workload } {
  const service = testService({
    name: "db.example",
    namespace: "egress",
    hostname: "db.example",
    vips: ["240.240.0.2"],
    ports: [{ servicePort: 80, targetPort: 8080 }],
    waypoint: WAYPOINT,
  });
  const endpoint = testWorkload({
    name: "db.example",
    namespace: "egress",
    hostname: "db.example",
    tunnelProtocol: "NONE",
    services: { "egress/db.example": { ports: [{ servicePort: 80, targetPort: 8080 }] } },
  });
  return { service, endpoint };
}

/** A request the waypoint took from a tunnel to `ip:port` (the CONNECT authority) for `service`. */
function requestTo(service: Service, ip: string, port: number): L7Request {
  return {
    method: "GET",
    scheme: "http",
    authority: service.hostname,
    path: "/",
    headers: {},
    port,
    protocol: "http/1.1",
    source: { ip: "127.0.0.1" },
    destination: { host: service.hostname, namespace: service.namespace, ip, port },
  };
}

function stateWith(...items: (Workload | Service)[]): ProxyState {
  const state = new ProxyState();
  state.applyAddresses({
    upserts: items.map((item) =>
      "uid" in item
        ? ([item.uid, { workload: item }] as const)
        : ([`${item.namespace}/${item.hostname}`, { service: item }] as const),
    ),
  });
  return state;
}

describe("pick for a PASSTHROUGH service", () => {
  const service = passthroughService("127.0.0.9");
  // An endpoint the control plane might still list: passthrough never picks it.
  const stray = testWorkload({
    name: "stray",
    namespace: "egress",
    ips: ["127.0.0.77"],
    services: { "egress/httpbin.example": { ports: [{ servicePort: 80, targetPort: 80 }] } },
  });
  const req = requestTo(service, "127.0.0.9", 80);

  it("goes to the original destination, the CONNECT authority's VIP:port, with no workload", () => {
    const state = stateWith(service, stray);
    for (const pick of [defaultStages(state).pick, new ClusterStage(state).pick]) {
      const picked = pick(req, { host: service.hostname, port: 80 });
      expect(picked).toMatchObject({ ok: true, service, endpoint: { address: "127.0.0.9", port: 80 } });
      expect(picked.ok && picked.endpoint.workload).toBeUndefined();
    }
  });

  it("keeps the dialed port when a route names another", () => {
    const picked = new ClusterStage(stateWith(service)).pick(req, { host: service.hostname, port: 8080 });
    expect(picked).toMatchObject({ ok: true, endpoint: { address: "127.0.0.9", port: 80 } });
  });

  it("still applies the DestinationRule's connection pool: connect timeout and maxConnections", () => {
    const stage = new ClusterStage(stateWith(service));
    stage.update(
      [
        {
          metadata: { name: "limits", namespace: "egress" },
          spec: {
            host: "httpbin.example",
            trafficPolicy: { connectionPool: { tcp: { maxConnections: 1, connectTimeout: "250ms" } } },
          },
        },
      ],
      new Map(),
    );
    const target = { host: service.hostname, port: 80, opaque: true };
    const first = stage.pick(req, target);
    expect(first).toMatchObject({ ok: true, endpoint: { address: "127.0.0.9", connectTimeoutMs: 250 } });
    const second = stage.pick(req, target);
    expect(second.ok).toBe(false);
    expect(!second.ok && hasCode(second.error, "AMB_UPSTREAM_OVERFLOW")).toBe(true);
    if (first.ok) first.endpoint.done({});
    expect(stage.pick(req, target).ok).toBe(true);
  });
});

describe("pick for a service with a DNS endpoint", () => {
  it("picks the hostname endpoint with the service's target port", () => {
    const { service, endpoint } = dnsService();
    const picked = new ClusterStage(stateWith(service, endpoint)).pick(
      requestTo(service, "240.240.0.2", 80),
      {
        host: service.hostname,
        port: 80,
      },
    );
    expect(picked).toMatchObject({
      ok: true,
      endpoint: { workload: { hostname: "db.example" }, port: 8080 },
    });
  });
});

// The pick-and-forward stages over HTTP/1.1 to an app on loopback, as a request through the
// waypoint reaches them.
describe("forwarding through the waypoint", () => {
  let app: Server;
  let port: number;
  let agents: UpstreamAgents;
  const dns: Record<string, string> = {};

  beforeEach(async () => {
    app = createServer((req, res) => {
      req.resume();
      res.end(`reached ${req.socket.localAddress}:${req.socket.localPort}`);
    });
    app.listen(0, "127.0.0.1");
    await once(app, "listening");
    port = (app.address() as AddressInfo).port;
    agents = new UpstreamAgents({
      ...plainDeps,
      resolveName: async (name) => {
        const ip = dns[name];
        if (!ip) throw new Error(`getaddrinfo ENOTFOUND ${name}`);
        return ip;
      },
    });
  });

  afterEach(async () => {
    agents.destroy();
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  });

  async function get(state: ProxyState, l7: L7Request) {
    const stages: Stages = { ...defaultStages(state), pick: new ClusterStage(state).pick };
    const info: StreamInfo = {
      sourceIp: "127.0.0.1",
      sourceAddress: "127.0.0.1:40000",
      sourcePrincipal: "spiffe://cluster.local/ns/test/sa/client",
      destination: l7.destination,
      labels: {} as StreamInfo["labels"],
    };
    const exchange = new Exchange(l7, info);
    const plan: ForwardPlan = {
      kind: "forward",
      host: l7.destination.host,
      retry: DEFAULT_RETRY,
    } as ForwardPlan;
    const request: AttemptRequest = {
      method: "GET",
      path: "/",
      authority: l7.authority,
      headers: {},
      upgrade: [],
    };
    const clock = new RequestClock(5_000);
    const body = new ReplayBody(Readable.from([]));
    body.once("complete", () => clock.requestDone());
    try {
      const out = await forward({ stages, send: http1Sender(agents), clock, exchange, plan, request, body });
      let text = "";
      for await (const chunk of out.response.body) text += String(chunk);
      out.dispose();
      return { status: out.response.status, text, upstreamHost: exchange.upstreamHost };
    } finally {
      clock.dispose();
    }
  }

  it("sends a PASSTHROUGH service's request to the address the client dialed", async () => {
    // The entry's address is the app itself: for resolution NONE the "VIP" is the real destination.
    const service = passthroughService("127.0.0.1");
    const res = await get(stateWith(service), requestTo(service, "127.0.0.1", port));
    expect(res).toEqual({
      status: 200,
      text: `reached 127.0.0.1:${port}`,
      upstreamHost: `127.0.0.1:${port}`,
    });
  });

  it("resolves a DNS endpoint's hostname as it connects", async () => {
    const { service, endpoint } = dnsService();
    service.ports = [{ servicePort: 80, targetPort: port }];
    endpoint.services = { "egress/db.example": { ports: [{ servicePort: 80, targetPort: port }] } };
    dns["db.example"] = "127.0.0.1";
    const res = await get(stateWith(service, endpoint), requestTo(service, "240.240.0.2", 80));
    expect(res).toMatchObject({ status: 200, text: `reached 127.0.0.1:${port}` });
  });

  it("fails with an upstream connect error naming the hostname when it does not resolve", async () => {
    const { service, endpoint } = dnsService();
    const withHost = { ...endpoint, hostname: "gone.example" };
    const err = await get(stateWith(service, withHost), requestTo(service, "240.240.0.2", 80)).catch(
      (e: unknown) => e,
    );
    expect(hasCode(err, WaypointErrorCode.UPSTREAM_CONNECT)).toBe(true);
    expect((err as Error).message).toBe(
      "cannot resolve gone.example, the hostname of endpoint Kubernetes//Pod/egress/db.example: getaddrinfo ENOTFOUND gone.example",
    );
  });
});
