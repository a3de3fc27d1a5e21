import { describe, expect, it } from "vitest";
import { describeSupportedKinds, kindInfo, namespaceOf, objectKey } from "./kinds.js";

describe("objectKey", () => {
  it("is group/Kind/namespace/name, spelling the core group 'core'", () => {
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "web", namespace: "demo" } };
    expect(objectKey(pod)).toBe("core/Pod/demo/web");
  });

  it("defaults namespaced objects to 'default' and leaves cluster-scoped ones empty", () => {
    expect(objectKey({ apiVersion: "v1", kind: "Service", metadata: { name: "s" } })).toBe(
      "core/Service/default/s",
    );
    expect(objectKey({ apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } })).toBe(
      "core/Namespace//demo",
    );
    expect(objectKey({ apiVersion: "v1", kind: "Node", metadata: { name: "n1", namespace: "x" } })).toBe(
      "core/Node//n1",
    );
  });

  it("is the same for every version of a kind", () => {
    const v1 = {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "p", namespace: "a" },
    };
    const v1beta1 = { ...v1, apiVersion: "security.istio.io/v1beta1" };
    expect(objectKey(v1)).toBe("security.istio.io/AuthorizationPolicy/a/p");
    expect(objectKey(v1beta1)).toBe(objectKey(v1));
  });
});

describe("kindInfo", () => {
  it("tells Istio's Gateway from the Gateway API's", () => {
    expect(kindInfo("gateway.networking.k8s.io/v1", "Gateway")?.namespaced).toBe(true);
    // Istio's own Gateway (ingress servers) is a kind of its own, with the networking versions.
    expect(kindInfo("networking.istio.io/v1alpha3", "Gateway")).toMatchObject({
      group: "networking.istio.io",
      namespaced: true,
    });
    const meta = { name: "gw", namespace: "demo" };
    expect(objectKey({ apiVersion: "networking.istio.io/v1", kind: "Gateway", metadata: meta })).toBe(
      "networking.istio.io/Gateway/demo/gw",
    );
    expect(objectKey({ apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", metadata: meta })).toBe(
      "gateway.networking.k8s.io/Gateway/demo/gw",
    );
    expect(kindInfo("v1", "Secret")?.namespaced).toBe(true);
  });

  it("knows which kinds are cluster-scoped", () => {
    expect(namespaceOf({ apiVersion: "v1", kind: "Node", metadata: { name: "n" } })).toBe("");
    expect(describeSupportedKinds()).toContain(
      "VirtualService (networking.istio.io/v1, networking.istio.io/v1beta1",
    );
    for (const kind of ["ServiceEntry", "WorkloadEntry"]) {
      expect(describeSupportedKinds()).toContain(
        `${kind} (networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)`,
      );
      expect(kindInfo("networking.istio.io/v1alpha3", kind)?.namespaced).toBe(true);
    }
  });
});
