import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { type TranslateResult, translate } from "./index.js";

// ---- builders ----

type Labels = Record<string, string>;
type Json = Record<string, unknown>;

let nextIp = 10;
function pod(name: string, namespace: string, labels: Labels = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels },
    spec: { nodeName: "node-1", serviceAccountName: "default" },
    status: { phase: "Running", podIP: `10.0.0.${nextIp++}` },
  };
}

function istioGateway(name: string, namespace: string, selector: Labels, servers: Json[]): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "Gateway",
    metadata: { name, namespace },
    spec: { selector, servers },
  };
}

function classIstioGateway(name: string, namespace: string, listeners: Json[]): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace },
    spec: { gatewayClassName: "istio", listeners },
  };
}

function tlsSecret(name: string, namespace: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace },
    type: "kubernetes.io/tls",
    data: { "tls.crt": "Y2VydA==", "tls.key": "a2V5" },
  } as KubeObject;
}

function policy(name: string, namespace: string, spec: Json): KubeObject {
  return {
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace },
    spec,
  };
}

const httpsServer = (credentialName: string) => ({
  port: { number: 443, name: "https", protocol: "HTTPS" },
  hosts: ["shop.example.com"],
  tls: { mode: "SIMPLE", credentialName },
});

const ids = (objects: KubeObject[]) =>
  objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`);
const warningsAbout = (result: TranslateResult, key: string) =>
  result.warnings.filter((w) => w.object === key).map((w) => w.message);

const GW_KEY = "networking.istio.io/Gateway/shop/public";

describe("ingress: Istio Gateways", () => {
  it("looks credentialName up in the namespace of the pods the selector matches, not the Gateway's", () => {
    const result = translate([
      // The Gateway lives in shop; its pods (and so its certificates) in istio-ingress.
      istioGateway("public", "shop", { istio: "ingressgateway" }, [httpsServer("shop-cert")]),
      pod("ingressgateway-1", "istio-ingress", { istio: "ingressgateway" }),
      pod("web", "shop", { app: "web" }),
      tlsSecret("shop-cert", "istio-ingress"),
      // Same name in the Gateway's namespace: not the one a gateway pod may read.
      tlsSecret("shop-cert", "shop"),
      tlsSecret("unrelated", "istio-ingress"),
    ]);
    const { ingress } = result.waypointConfig;
    expect(ids(ingress.gateways)).toEqual(["Gateway/shop/public"]);
    expect(ids(ingress.secrets)).toEqual(["Secret/istio-ingress/shop-cert"]);
    expect(warningsAbout(result, GW_KEY)).toEqual([]);
  });

  it("warns naming a credentialName Secret that does not exist, and still serves the Gateway", () => {
    const result = translate([
      istioGateway("public", "shop", { istio: "ingressgateway" }, [httpsServer("missing-cert")]),
      pod("ingressgateway-1", "istio-ingress", { istio: "ingressgateway" }),
    ]);
    expect(ids(result.waypointConfig.ingress.gateways)).toEqual(["Gateway/shop/public"]);
    expect(result.waypointConfig.ingress.secrets).toEqual([]);
    expect(warningsAbout(result, GW_KEY)).toEqual([
      "spec.servers[0].tls.credentialName: Secret istio-ingress/missing-cert not found; the server refuses TLS handshakes until it exists",
    ]);
  });

  it("does not publish a Gateway no pod serves, and says so", () => {
    const result = translate([
      istioGateway("public", "shop", { istio: "ingressgateway" }, [httpsServer("shop-cert")]),
      pod("web", "shop", { app: "web" }),
      tlsSecret("shop-cert", "shop"),
    ]);
    expect(result.waypointConfig.ingress.gateways).toEqual([]);
    expect(result.waypointConfig.ingress.secrets).toEqual([]);
    const [warning, ...rest] = warningsAbout(result, GW_KEY);
    expect(rest).toEqual([]);
    expect(warning).toContain("no pod matches selector");
    expect(warning).toContain('"istio":"ingressgateway"');
  });

  it("is not served by a waypoint's pod even when the selector matches its labels", () => {
    const result = translate([
      istioGateway("public", "shop", { app: "gw" }, [httpsServer("shop-cert")]),
      pod("wp-1", "shop", { app: "gw", "gateway.networking.k8s.io/gateway-name": "wp" }),
    ]);
    expect(result.waypointConfig.ingress.gateways).toEqual([]);
  });
});

describe("ingress: class-istio Gateways", () => {
  const listener = (refs: Json[]) => ({
    name: "https",
    port: 443,
    protocol: "HTTPS",
    tls: { mode: "Terminate", certificateRefs: refs },
  });
  const KEY = "gateway.networking.k8s.io/Gateway/shop/web";

  it("publishes a certificateRef in the Gateway's namespace", () => {
    const result = translate([
      classIstioGateway("web", "shop", [listener([{ name: "shop-cert" }])]),
      tlsSecret("shop-cert", "shop"),
      tlsSecret("other-cert", "shop"),
    ]);
    expect(ids(result.waypointConfig.ingress.gateways)).toEqual(["Gateway/shop/web"]);
    expect(ids(result.waypointConfig.ingress.secrets)).toEqual(["Secret/shop/shop-cert"]);
    expect(warningsAbout(result, KEY)).toEqual([]);
    // A waypoint's Gateway list is only its own class.
    expect(result.waypointConfig.gateways).toEqual([]);
  });

  it("refuses a certificateRef to another namespace with a warning (no ReferenceGrant)", () => {
    const result = translate([
      classIstioGateway("web", "shop", [
        listener([
          { name: "shop-cert", namespace: "certs" },
          { kind: "ConfigMap", name: "x" },
        ]),
      ]),
      tlsSecret("shop-cert", "certs"),
    ]);
    expect(ids(result.waypointConfig.ingress.gateways)).toEqual(["Gateway/shop/web"]);
    expect(result.waypointConfig.ingress.secrets).toEqual([]);
    expect(warningsAbout(result, KEY)).toEqual([
      "spec.listeners[0].tls.certificateRefs[0]: Secret certs/shop-cert is in another namespace (ReferenceGrant is not supported); refused",
      "spec.listeners[0].tls.certificateRefs[1]: only Secrets are supported",
    ]);
  });

  it("leaves Gateways of other classes out", () => {
    const result = translate([
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: { name: "other", namespace: "shop" },
        spec: { gatewayClassName: "example.com/other", listeners: [listener([{ name: "shop-cert" }])] },
      },
      tlsSecret("shop-cert", "shop"),
    ]);
    expect(result.waypointConfig.ingress).toEqual({ gateways: [], secrets: [], policies: [] });
  });
});

describe("ingress: the policies a gateway pod enforces", () => {
  it("takes selector and namespace-wide policies of gateway pod namespaces and the root namespace, never targetRefs ones", () => {
    const result = translate([
      istioGateway("public", "shop", { istio: "ingressgateway" }, [httpsServer("shop-cert")]),
      pod("ingressgateway-1", "istio-ingress", { istio: "ingressgateway" }),
      classIstioGateway("web", "store", [{ name: "http", port: 80, protocol: "HTTP" }]),
      tlsSecret("shop-cert", "istio-ingress"),
      policy("gw-selector", "istio-ingress", {
        selector: { matchLabels: { istio: "ingressgateway" } },
        rules: [{}],
      }),
      policy("gw-namespace", "istio-ingress", {
        action: "DENY",
        rules: [{ from: [{ source: { ipBlocks: ["1.2.3.4"] } }] }],
      }),
      policy("gw-targeted", "istio-ingress", {
        targetRefs: [{ kind: "Gateway", group: "gateway.networking.k8s.io", name: "x" }],
        rules: [{}],
      }),
      policy("gw-targeted-old", "istio-ingress", {
        targetRef: { kind: "Gateway", group: "gateway.networking.k8s.io", name: "x" },
        rules: [{}],
      }),
      policy("store-wide", "store", { rules: [{}] }),
      policy("mesh-wide", "istio-system", {
        action: "DENY",
        rules: [{ to: [{ operation: { paths: ["/admin"] } }] }],
      }),
      // The Istio Gateway's own namespace has no gateway pod: its policies are not a gateway's.
      policy("shop-policy", "shop", { rules: [{}] }),
      policy("elsewhere", "payments", { rules: [{}] }),
    ]);
    expect(ids(result.waypointConfig.ingress.policies).sort()).toEqual([
      "AuthorizationPolicy/istio-ingress/gw-namespace",
      "AuthorizationPolicy/istio-ingress/gw-selector",
      "AuthorizationPolicy/istio-system/mesh-wide",
      "AuthorizationPolicy/store/store-wide",
    ]);
  });

  it("follows rootNamespace", () => {
    const result = translate(
      [
        classIstioGateway("web", "store", [{ name: "http", port: 80, protocol: "HTTP" }]),
        policy("mesh-wide", "mesh-root", { rules: [{}] }),
        policy("not-root", "istio-system", { rules: [{}] }),
      ],
      { rootNamespace: "mesh-root" },
    );
    expect(ids(result.waypointConfig.ingress.policies)).toEqual(["AuthorizationPolicy/mesh-root/mesh-wide"]);
  });
});
