import { decodeL7Resource, L7_RESOURCE_TYPE_URL, ResourceStore } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { translate } from "../translate/index.js";
import { Publisher } from "./publisher.js";

const objects: KubeObject[] = [
  {
    apiVersion: "networking.istio.io/v1",
    kind: "Gateway",
    metadata: { name: "public", namespace: "istio-ingress" },
    spec: {
      selector: { istio: "ingressgateway" },
      servers: [
        {
          port: { number: 443, name: "https", protocol: "HTTPS" },
          hosts: ["*"],
          tls: { mode: "SIMPLE", credentialName: "shop-cert" },
        },
      ],
    },
  },
  {
    // A Gateway API Gateway of the same name and namespace: both are published.
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "public", namespace: "istio-ingress" },
    spec: { gatewayClassName: "istio", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
  },
  {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "ingressgateway-1", namespace: "istio-ingress", labels: { istio: "ingressgateway" } },
    spec: { nodeName: "node-1" },
    status: { phase: "Running", podIP: "10.0.0.9" },
  },
  {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "shop-cert", namespace: "istio-ingress", labels: { a: "b" } },
    type: "kubernetes.io/tls",
    data: { "tls.crt": "Y2VydA==" },
    stringData: { "tls.key": "key" },
  } as KubeObject,
];

describe("Publisher: ingress", () => {
  it("publishes both Gateways under their own names, and a Secret as its type and base64 data", () => {
    const store = new ResourceStore();
    new Publisher(store).publish(translate(objects));
    const published = store.resources(L7_RESOURCE_TYPE_URL);
    const names = [...published.keys()].filter((n) => !n.startsWith("Pod/")).sort();
    expect(names).toEqual([
      "Gateway.networking.istio.io/istio-ingress/public",
      "Gateway/istio-ingress/public",
      "Secret/istio-ingress/shop-cert",
    ]);
    const name = "Secret/istio-ingress/shop-cert";
    const secret = decodeL7Resource(published.get(name)!.resource, name);
    expect(secret).toEqual({
      kind: "Secret",
      apiVersion: "v1",
      namespace: "istio-ingress",
      name: "shop-cert",
      // stringData folded in as the API server stores it.
      spec: {
        type: "kubernetes.io/tls",
        data: { "tls.crt": "Y2VydA==", "tls.key": Buffer.from("key").toString("base64") },
      },
      labels: { a: "b" },
      annotations: {},
    });
    const gw = "Gateway.networking.istio.io/istio-ingress/public";
    expect(decodeL7Resource(published.get(gw)!.resource, gw).apiVersion).toBe("networking.istio.io/v1");
  });
});
