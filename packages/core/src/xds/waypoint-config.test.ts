import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import { protos } from "./proto.js";
import {
  decodeL7Resource,
  encodeL7Resource,
  isSecretResourceName,
  L7_RESOURCE_TYPE_URL,
  type L7Resource,
  l7ResourceName,
} from "./waypoint-config.js";

const virtualService: L7Resource = {
  kind: "VirtualService",
  apiVersion: "networking.istio.io/v1",
  namespace: "demo",
  name: "httpbin",
  spec: {
    hosts: ["httpbin.demo.svc.cluster.local"],
    http: [{ route: [{ destination: { host: "httpbin", port: { number: 8000 } }, weight: 90 }] }],
  },
  labels: { app: "httpbin" },
  annotations: {},
};

/** Raw bytes of an L7Resource message, for inputs encodeL7Resource would never produce. */
function raw(fields: Record<string, unknown>): Uint8Array {
  const type = protos().l7ResourceType;
  return type.encode(type.fromObject(fields)).finish();
}

describe("L7Resource codec", () => {
  it("round-trips an object, spec numbers staying integers", () => {
    const bytes = encodeL7Resource(virtualService);
    const decoded = decodeL7Resource(bytes, "VirtualService/demo/httpbin");
    expect(decoded).toEqual(virtualService);
    const port = (decoded.spec as { http: { route: { destination: { port: { number: number } } }[] }[] })
      .http[0]!.route[0]!.destination.port.number;
    expect(Number.isInteger(port)).toBe(true);
  });

  it("is canonical: key order of the spec, labels and annotations does not change the bytes", () => {
    const a = encodeL7Resource({
      ...virtualService,
      spec: { b: 1, a: { y: 2, x: [{ q: 1, p: 2 }] } },
      labels: { z: "1", a: "2" },
      annotations: { n: "1", m: "2" },
    });
    const b = encodeL7Resource({
      ...virtualService,
      spec: { a: { x: [{ p: 2, q: 1 }], y: 2 }, b: 1 },
      labels: { a: "2", z: "1" },
      annotations: { m: "2", n: "1" },
    });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it("keeps an absent spec absent and an empty one empty", () => {
    const none = decodeL7Resource(encodeL7Resource({ ...virtualService, spec: undefined }));
    expect(none.spec).toBeUndefined();
    const empty = decodeL7Resource(encodeL7Resource({ ...virtualService, spec: {} }));
    expect(empty.spec).toEqual({});
  });

  it("names resources <Kind>/<namespace>/<name> under Ambient's type URL", () => {
    expect(l7ResourceName(virtualService)).toBe("VirtualService/demo/httpbin");
    expect(L7_RESOURCE_TYPE_URL).toBe("type.googleapis.com/ambient.waypoint.v1.L7Resource");
  });

  it("names Istio's Gateway apart from the Gateway API's of the same name, and round-trips it", () => {
    const istio: L7Resource = {
      kind: "Gateway",
      apiVersion: "networking.istio.io/v1",
      namespace: "demo",
      name: "public",
      spec: {
        selector: { istio: "ingressgateway" },
        servers: [
          {
            port: { number: 443, name: "https", protocol: "HTTPS" },
            hosts: ["*"],
            tls: { credentialName: "c" },
          },
        ],
      },
      labels: {},
      annotations: {},
    };
    const gatewayApi: L7Resource = { ...istio, apiVersion: "gateway.networking.k8s.io/v1", spec: {} };
    expect(l7ResourceName(istio)).toBe("Gateway.networking.istio.io/demo/public");
    expect(l7ResourceName({ ...istio, apiVersion: "networking.istio.io/v1alpha3" })).toBe(
      "Gateway.networking.istio.io/demo/public",
    );
    expect(l7ResourceName(gatewayApi)).toBe("Gateway/demo/public");
    expect(decodeL7Resource(encodeL7Resource(istio), "Gateway.networking.istio.io/demo/public")).toEqual(
      istio,
    );
    // Filed under the other Gateway's name, it is refused: the two never stand in for each other.
    expect(() => decodeL7Resource(encodeL7Resource(istio), "Gateway/demo/public")).toThrow(
      /describes Gateway\.networking\.istio\.io\/demo\/public/,
    );
    expect(() =>
      decodeL7Resource(encodeL7Resource(gatewayApi), "Gateway.networking.istio.io/demo/public"),
    ).toThrow(/describes Gateway\/demo\/public/);
  });

  it("tells a Secret's resource name and its namespace", () => {
    expect(isSecretResourceName("Secret/istio-ingress/shop-cert")).toEqual({ namespace: "istio-ingress" });
    expect(isSecretResourceName("VirtualService/demo/secret")).toBeUndefined();
    expect(isSecretResourceName("Secrets/demo/x")).toBeUndefined();
    expect(isSecretResourceName("Secret//x")).toBeUndefined();
  });

  it("refuses a spec that is not JSON, naming the resource", () => {
    const bytes = raw({ kind: "VirtualService", namespace: "demo", name: "httpbin", specJson: "{hosts:" });
    let caught: unknown;
    try {
      decodeL7Resource(bytes, "VirtualService/demo/httpbin");
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: ErrorCode.XDS_DECODE });
    expect((caught as Error).message).toContain('"VirtualService/demo/httpbin"');
    expect((caught as Error).message).toContain("spec_json is not valid JSON");
  });

  it("names the resource from its own fields when the caller gives no name", () => {
    const bytes = raw({ kind: "Gateway", namespace: "demo", name: "waypoint", specJson: "nope" });
    expect(() => decodeL7Resource(bytes)).toThrow(/"Gateway\/demo\/waypoint"/);
  });

  it("refuses a resource without kind or name, or filed under another name", () => {
    expect(() => decodeL7Resource(raw({ name: "x", namespace: "demo" }))).toThrow(/kind and name/);
    expect(() => decodeL7Resource(encodeL7Resource(virtualService), "VirtualService/demo/other")).toThrow(
      /describes VirtualService\/demo\/httpbin/,
    );
  });

  it("refuses bytes that are not a protobuf message", () => {
    expect(() => decodeL7Resource(new Uint8Array([0x0a, 0xff]), "x")).toThrow(
      expect.objectContaining({ code: ErrorCode.XDS_DECODE }),
    );
  });
});
