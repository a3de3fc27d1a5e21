import type { L7Resource } from "@ambient/core";
import { describe, expect, it } from "vitest";
import {
  compileIngressPlan,
  credentialKey,
  GATEWAY_NAME_LABEL,
  type IngressPort,
  type IngressServer,
  serverFor,
} from "./plan.js";

function istioGateway(name: string, spec: unknown, namespace = "istio-system"): L7Resource {
  return {
    kind: "Gateway",
    apiVersion: "networking.istio.io/v1",
    namespace,
    name,
    spec,
    labels: {},
    annotations: {},
  };
}

function k8sGateway(name: string, spec: unknown, namespace = "shop"): L7Resource {
  return {
    kind: "Gateway",
    apiVersion: "gateway.networking.k8s.io/v1",
    namespace,
    name,
    spec,
    labels: {},
    annotations: {},
  };
}

const ingressPod = { namespace: "istio-system", labels: { istio: "ingressgateway", app: "istio-ingress" } };

const httpServer = (hosts: string[], port = 80) => ({ port: { number: port, protocol: "HTTP" }, hosts });

describe("compileIngressPlan: Istio Gateways", () => {
  it("serves a Gateway whose selector matches the pod's labels, not one that does not", () => {
    const plan = compileIngressPlan(
      [
        istioGateway("public", { selector: { istio: "ingressgateway" }, servers: [httpServer(["*"])] }),
        istioGateway("internal", { selector: { istio: "internal" }, servers: [httpServer(["*"], 8080)] }),
        // Every label of the selector must match, not just one.
        istioGateway("both", {
          selector: { istio: "ingressgateway", app: "other" },
          servers: [httpServer(["*"], 81)],
        }),
      ],
      ingressPod,
    );
    expect(plan.gateways).toEqual(["istio-system/public"]);
    expect(plan.ports.map((p) => p.port)).toEqual([80]);
  });

  it("an empty or absent selector selects no pod", () => {
    const plan = compileIngressPlan(
      [
        istioGateway("empty", { selector: {}, servers: [httpServer(["*"])] }),
        istioGateway("absent", { servers: [httpServer(["*"])] }),
      ],
      ingressPod,
    );
    expect(plan).toEqual({ gateways: [], ports: [], skipped: [] });
  });

  it("a selector matches pods in any namespace (Istio's default PILOT_SCOPE_GATEWAY_TO_NAMESPACE=false)", () => {
    const plan = compileIngressPlan(
      [istioGateway("shop", { selector: { istio: "ingressgateway" }, servers: [httpServer(["*"])] }, "shop")],
      ingressPod,
    );
    expect(plan.gateways).toEqual(["shop/shop"]);
  });

  it("hosts lose their namespace part and are lowercased", () => {
    const plan = compileIngressPlan(
      [
        istioGateway("public", {
          selector: { istio: "ingressgateway" },
          servers: [
            httpServer([
              "shop/Shop.Example.com",
              "*/any.example.com",
              "./here.example.com",
              "plain.example.com",
            ]),
          ],
        }),
      ],
      ingressPod,
    );
    expect(plan.ports[0]?.servers[0]?.hosts).toEqual([
      "shop.example.com",
      "any.example.com",
      "here.example.com",
      "plain.example.com",
    ]);
  });

  it("HTTPS SIMPLE keeps its credentialName; PASSTHROUGH is a TLS server; what cannot be served is skipped", () => {
    const plan = compileIngressPlan(
      [
        istioGateway("public", {
          selector: { istio: "ingressgateway" },
          servers: [
            {
              port: { number: 443, protocol: "HTTPS" },
              hosts: ["a.example.com"],
              tls: { mode: "SIMPLE", credentialName: "a-cert" },
            },
            {
              port: { number: 443, protocol: "TLS" },
              hosts: ["b.example.com"],
              tls: { mode: "PASSTHROUGH" },
            },
            { port: { number: 443, protocol: "HTTPS" }, hosts: ["c.example.com"], tls: { mode: "MUTUAL" } },
            { port: { number: 443, protocol: "HTTPS" }, hosts: ["d.example.com"] },
            { port: { number: 9000, protocol: "MONGO" }, hosts: ["*"] },
            {
              port: { number: 80, protocol: "HTTP" },
              hosts: ["a.example.com"],
              tls: { httpsRedirect: true },
            },
          ],
        }),
      ],
      ingressPod,
    );
    expect(plan.ports.map((p) => [p.port, p.tls, p.servers.length])).toEqual([
      [80, false, 1],
      [443, true, 2],
    ]);
    const [http, https] = plan.ports as [IngressPort, IngressPort];
    expect(http.servers[0]?.httpsRedirect).toBe(true);
    expect(https.servers.map((s) => [s.protocol, s.tls])).toEqual([
      ["HTTPS", { mode: "SIMPLE", credential: "a-cert" }],
      ["TLS", { mode: "PASSTHROUGH" }],
    ]);
    expect(plan.skipped).toEqual([
      "Gateway istio-system/public: tls.mode MUTUAL is not served",
      "Gateway istio-system/public: tls.credentialName is required",
      "Gateway istio-system/public: protocol MONGO is not served",
    ]);
    // An Istio credentialName is read in the gateway pod's namespace.
    expect(credentialKey(https.servers[0]!, "istio-system")).toBe("istio-system/a-cert");
    expect(credentialKey(https.servers[1]!, "istio-system")).toBeUndefined();
  });

  it("a port one Gateway serves with TLS and another without keeps the first and skips the second", () => {
    const plan = compileIngressPlan(
      [
        istioGateway("a-tls", {
          selector: { istio: "ingressgateway" },
          servers: [{ port: { number: 8443, protocol: "TLS" }, hosts: ["*"], tls: { mode: "PASSTHROUGH" } }],
        }),
        istioGateway("b-plain", {
          selector: { istio: "ingressgateway" },
          servers: [httpServer(["*"], 8443)],
        }),
      ],
      ingressPod,
    );
    expect(plan.gateways).toEqual(["istio-system/a-tls", "istio-system/b-plain"]);
    expect(plan.ports).toHaveLength(1);
    expect(plan.ports[0]).toMatchObject({ port: 8443, tls: true });
    expect(plan.ports[0]?.servers.map((s) => s.gateway)).toEqual(["istio-system/a-tls"]);
    expect(plan.skipped).toEqual([
      "Gateway istio-system/b-plain: port 8443 is already served as TLS by another Gateway",
    ]);
  });
});

describe("compileIngressPlan: Gateway API Gateways of class istio", () => {
  const shopPod = { namespace: "shop", labels: { [GATEWAY_NAME_LABEL]: "shop-gw" } };
  const listeners = [
    { name: "http", port: 80, protocol: "HTTP", hostname: "Shop.Example.com" },
    {
      name: "https",
      port: 443,
      protocol: "HTTPS",
      hostname: "shop.example.com",
      tls: { certificateRefs: [{ name: "shop-cert" }] },
    },
    { name: "pass", port: 8443, protocol: "TLS", tls: { mode: "Passthrough" } },
    {
      name: "foreign",
      port: 443,
      protocol: "HTTPS",
      hostname: "other.example.com",
      tls: { certificateRefs: [{ name: "their-cert", namespace: "other" }] },
    },
    {
      name: "same-ns",
      port: 443,
      protocol: "HTTPS",
      tls: { certificateRefs: [{ name: "c", namespace: "shop" }] },
    },
    { name: "noref", port: 443, protocol: "HTTPS", tls: {} },
    { name: "udp", port: 53, protocol: "UDP" },
  ];

  it("is served only by the pod labelled with its name, in its own namespace", () => {
    const gw = k8sGateway("shop-gw", { gatewayClassName: "istio", listeners });
    expect(compileIngressPlan([gw], shopPod).gateways).toEqual(["shop/shop-gw"]);
    expect(compileIngressPlan([gw], { ...shopPod, namespace: "other" }).gateways).toEqual([]);
    expect(
      compileIngressPlan([gw], { namespace: "shop", labels: { [GATEWAY_NAME_LABEL]: "other" } }).gateways,
    ).toEqual([]);
    expect(compileIngressPlan([gw], { namespace: "shop", labels: {} }).gateways).toEqual([]);
  });

  it("a Gateway of another class (a waypoint's istio-waypoint) is not an ingress", () => {
    const gw = k8sGateway("shop-gw", { gatewayClassName: "istio-waypoint", listeners });
    expect(compileIngressPlan([gw], shopPod)).toEqual({ gateways: [], ports: [], skipped: [] });
  });

  it("listeners become servers: hostname (default *), Terminate with a Secret of its namespace, Passthrough", () => {
    const plan = compileIngressPlan(
      [k8sGateway("shop-gw", { gatewayClassName: "istio", listeners })],
      shopPod,
    );
    const byPort = Object.fromEntries(plan.ports.map((p) => [p.port, p]));
    expect(byPort[80]?.servers).toEqual<IngressServer[]>([
      { gateway: "shop/shop-gw", hosts: ["shop.example.com"], protocol: "HTTP", httpsRedirect: false },
    ]);
    expect(byPort[443]?.servers.map((s) => [s.hosts, s.tls?.credential])).toEqual([
      [["shop.example.com"], "shop/shop-cert"],
      [["*"], "shop/c"],
    ]);
    expect(byPort[8443]).toMatchObject({ tls: true });
    expect(byPort[8443]?.servers).toEqual<IngressServer[]>([
      {
        gateway: "shop/shop-gw",
        hosts: ["*"],
        protocol: "TLS",
        tls: { mode: "PASSTHROUGH" },
        httpsRedirect: false,
      },
    ]);
    expect(plan.skipped).toEqual([
      "Gateway shop/shop-gw listener foreign: a Secret in another namespace is refused (no ReferenceGrant support)",
      "Gateway shop/shop-gw listener noref: tls.certificateRefs names no Secret",
      "Gateway shop/shop-gw listener udp: protocol UDP is not served (HTTP, HTTPS, TLS, TCP)",
    ]);
    // Already qualified: the pod namespace does not change it.
    expect(credentialKey(byPort[443]!.servers[0]!, "elsewhere")).toBe("shop/shop-cert");
  });
});

describe("serverFor", () => {
  const server = (name: string, hosts: string[]): IngressServer => ({
    gateway: `ns/${name}`,
    hosts,
    protocol: "HTTPS",
    httpsRedirect: false,
  });
  const port: IngressPort = {
    port: 443,
    tls: true,
    servers: [
      server("any", ["*"]),
      server("wide", ["*.example.com"]),
      server("narrow", ["*.shop.example.com"]),
      server("exact", ["api.shop.example.com"]),
    ],
  };
  const pick = (p: IngressPort, host: string | undefined) => serverFor(p, host)?.gateway;

  it.each<[string | undefined, string]>([
    ["api.shop.example.com", "ns/exact"],
    ["web.shop.example.com", "ns/narrow"],
    ["shop.example.com", "ns/wide"],
    ["example.com", "ns/any"], // "*.example.com" does not cover the bare domain
    ["other.test", "ns/any"],
    [undefined, "ns/any"],
  ])("%s → %s", (host, expected) => {
    expect(pick(port, host)).toBe(expected);
  });

  it("the order of servers does not decide: the most specific wins", () => {
    expect(pick({ ...port, servers: [...port.servers].reverse() }, "api.shop.example.com")).toBe("ns/exact");
    expect(pick({ ...port, servers: [...port.servers].reverse() }, "x.example.com")).toBe("ns/wide");
  });

  it("without SNI only a server for any host takes the connection", () => {
    const noAny: IngressPort = { ...port, servers: port.servers.filter((s) => !s.hosts.includes("*")) };
    expect(pick(noAny, undefined)).toBeUndefined();
    expect(pick(noAny, "unrelated.test")).toBeUndefined();
    expect(pick(noAny, "a.example.com")).toBe("ns/wide");
  });
});

describe("compileIngressPlan: TCP servers", () => {
  it("a TCP server (Istio) or listener (Gateway API) makes a tcp port, routed by port alone", () => {
    const plan = compileIngressPlan(
      [
        {
          kind: "Gateway",
          apiVersion: "networking.istio.io/v1",
          namespace: "istio-system",
          name: "raw",
          spec: {
            selector: { istio: "ingressgateway" },
            servers: [{ port: { number: 9000, protocol: "TCP" }, hosts: ["*"] }],
          },
          labels: {},
          annotations: {},
        },
      ],
      { namespace: "istio-system", labels: { istio: "ingressgateway" } },
    );
    expect(plan.ports).toEqual([
      {
        port: 9000,
        tls: false,
        tcp: true,
        servers: [{ gateway: "istio-system/raw", hosts: ["*"], protocol: "TCP", httpsRedirect: false }],
      },
    ]);
  });
});
