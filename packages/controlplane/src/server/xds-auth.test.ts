import { ADDRESS_TYPE_URL, L7_RESOURCE_TYPE_URL } from "@ambient/core";
import { describe, expect, it } from "vitest";
import type { Caller } from "../ca/authenticator.js";
import { visibleTo } from "./xds-auth.js";

const gatewayPod: Caller = {
  kind: "serviceaccount",
  namespace: "istio-ingress",
  serviceAccount: "ingressgateway",
  pod: { name: "ingressgateway-1", uid: "u1" },
};
const otherNamespace: Caller = {
  kind: "serviceaccount",
  namespace: "shop",
  serviceAccount: "ingressgateway",
};
const node: Caller = { kind: "node", node: "node-1" };
const SECRET = "Secret/istio-ingress/shop-cert";

describe("visibleTo", () => {
  it("shows a Secret to service accounts of its own namespace only", () => {
    expect(visibleTo(gatewayPod)(L7_RESOURCE_TYPE_URL, SECRET)).toBe(true);
    expect(
      visibleTo({ ...gatewayPod, serviceAccount: "default", pod: undefined })(L7_RESOURCE_TYPE_URL, SECRET),
    ).toBe(true);
    expect(visibleTo(otherNamespace)(L7_RESOURCE_TYPE_URL, SECRET)).toBe(false);
    expect(visibleTo(otherNamespace)(L7_RESOURCE_TYPE_URL, "Secret/shop/shop-cert")).toBe(true);
  });

  it("never shows a Secret to a node's ztunnel", () => {
    expect(visibleTo(node)(L7_RESOURCE_TYPE_URL, SECRET)).toBe(false);
    expect(visibleTo({ kind: "node", node: "istio-ingress" })(L7_RESOURCE_TYPE_URL, SECRET)).toBe(false);
  });

  it("shows everything else to everyone, Secret-like names of other types included", () => {
    for (const caller of [gatewayPod, otherNamespace, node]) {
      const visible = visibleTo(caller);
      expect(visible(L7_RESOURCE_TYPE_URL, "VirtualService/istio-ingress/shop")).toBe(true);
      expect(visible(L7_RESOURCE_TYPE_URL, "Gateway.networking.istio.io/istio-ingress/public")).toBe(true);
      expect(visible(ADDRESS_TYPE_URL, SECRET)).toBe(true);
    }
  });
});
