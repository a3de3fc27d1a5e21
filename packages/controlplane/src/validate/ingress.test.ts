import { describe, expect, it } from "vitest";
import { validateObject } from "./index.js";

type Json = Record<string, unknown>;

function problemsOf(obj: Json) {
  const result = validateObject(obj);
  return result.ok ? [] : result.problems;
}

const gateway = (servers: unknown, extra: Json = {}) =>
  problemsOf({
    apiVersion: "networking.istio.io/v1",
    kind: "Gateway",
    metadata: { name: "ingress", namespace: "istio-ingress" },
    spec: { selector: { istio: "ingressgateway" }, ...(servers === undefined ? {} : { servers }), ...extra },
  });
const paths = (problems: { path: string }[]) => problems.map((p) => p.path);

const http = (port: Json = {}, extra: Json = {}) => ({
  port: { number: 80, name: "http", protocol: "HTTP", ...port },
  hosts: ["*"],
  ...extra,
});
const https = (tls: unknown, port: Json = {}, extra: Json = {}) => ({
  port: { number: 443, name: "https", protocol: "HTTPS", ...port },
  hosts: ["shop.example.com"],
  ...(tls === undefined ? {} : { tls }),
  ...extra,
});

describe("Istio Gateway validation", () => {
  it("accepts HTTP, HTTPS with a credentialName, TLS passthrough and namespaced hosts", () => {
    expect(
      gateway([
        http({}, { tls: { httpsRedirect: true } }),
        https({ mode: "SIMPLE", credentialName: "shop-cert" }),
        {
          port: { number: 8443, name: "tls", protocol: "TLS" },
          hosts: ["./db.example.com", "*/*.example.org", "shop/api.example.com"],
          tls: { mode: "PASSTHROUGH" },
        },
        { port: { number: 8080, name: "grpc", protocol: "GRPC" }, hosts: ["*"] },
      ]),
    ).toEqual([]);
    // mode defaults to SIMPLE; the v1alpha3 spelling is the same kind.
    expect(
      problemsOf({
        apiVersion: "networking.istio.io/v1alpha3",
        kind: "Gateway",
        metadata: { name: "g", namespace: "demo" },
        spec: { selector: { app: "gw" }, servers: [https({ credentialName: "c" })] },
      }),
    ).toEqual([]);
  });

  it("needs at least one server", () => {
    expect(paths(gateway(undefined))).toEqual(["spec.servers"]);
    expect(paths(gateway([]))).toEqual(["spec.servers"]);
  });

  it("refuses a protocol the gateway does not serve, naming the port's protocol", () => {
    const problems = gateway([http({ protocol: "MONGO" })]);
    expect(paths(problems)).toEqual(["spec.servers[0].port.protocol"]);
    expect(problems[0]!.message).toContain('"MONGO"');
    // TCP is served (VirtualService tcp routes), and needs no tls.
    expect(paths(gateway([http({ protocol: "TCP" })]))).toEqual([]);
    expect(paths(gateway([http({ protocol: undefined })]))).toEqual(["spec.servers[0].port.protocol"]);
  });

  it("needs tls on an HTTPS server", () => {
    const problems = gateway([http(), https(undefined)]);
    expect(paths(problems)).toEqual(["spec.servers[1].tls"]);
    expect(problems[0]!.message).toContain("HTTPS");
  });

  it("refuses MUTUAL and ISTIO_MUTUAL rather than serving them without client certificates", () => {
    for (const mode of ["MUTUAL", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"]) {
      const problems = gateway([https({ mode, credentialName: "c" })]);
      expect(paths(problems), mode).toEqual(["spec.servers[0].tls.mode"]);
      expect(problems[0]!.message).toContain("MUTUAL is refused");
    }
  });

  it("needs credentialName with SIMPLE, and refuses certificate files", () => {
    expect(paths(gateway([https({ mode: "SIMPLE" })]))).toEqual(["spec.servers[0].tls.credentialName"]);
    expect(paths(gateway([https({ mode: "SIMPLE", credentialName: "" })]))).toEqual([
      "spec.servers[0].tls.credentialName",
    ]);
    expect(
      paths(
        gateway([https({ credentialName: "c", serverCertificate: "/etc/certs/tls.crt", privateKey: "/k" })]),
      ),
    ).toEqual(["spec.servers[0].tls.serverCertificate", "spec.servers[0].tls.privateKey"]);
  });

  it("refuses PASSTHROUGH on an HTTPS server (it terminates TLS)", () => {
    const problems = gateway([https({ mode: "PASSTHROUGH" })]);
    expect(paths(problems)).toEqual(["spec.servers[0].tls.mode"]);
    expect(problems[0]!.message).toContain("protocol TLS");
  });

  it("refuses hosts whose namespace or name part is malformed, naming the host", () => {
    const problems = gateway([
      http({}, { hosts: ["ok.example.com", "/shop.example.com", "Bad_NS/x.example.com", "ns/", "a/b/c"] }),
    ]);
    expect(paths(problems)).toEqual([
      "spec.servers[0].hosts[1]",
      "spec.servers[0].hosts[2]",
      "spec.servers[0].hosts[3]",
      "spec.servers[0].hosts[4]",
    ]);
    expect(problems.find((p) => p.path === "spec.servers[0].hosts[3]")!.message).toContain('"ns/"');
    expect(paths(gateway([http({}, { hosts: [] })]))).toEqual(["spec.servers[0].hosts"]);
  });

  it("refuses plaintext and TLS servers on one port", () => {
    const problems = gateway([http({ number: 8000 }), https({ credentialName: "c" }, { number: 8000 })]);
    expect(paths(problems)).toEqual(["spec.servers[1].port.protocol"]);
    expect(problems[0]!.message).toContain("port 8000 is already served as HTTP");
    // Two plaintext servers (or two TLS ones) may share a port.
    expect(
      gateway([http({ number: 8000 }), http({ number: 8000, name: "http2", protocol: "HTTP2" })]),
    ).toEqual([]);
  });

  it("refuses a duplicate port name, pointing at the first", () => {
    const problems = gateway([http(), https({ credentialName: "c" }, { name: "http" })]);
    expect(paths(problems)).toEqual(["spec.servers[1].port.name"]);
    expect(problems[0]!.message).toContain("spec.servers[0].port");
  });

  it("holds the selector to label rules", () => {
    expect(paths(gateway([http()], { selector: { "bad key!": "x" } }))).toEqual([
      'spec.selector["bad key!"]',
    ]);
  });
});

describe("Secret validation", () => {
  const secret = (extra: Json) =>
    problemsOf({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "shop-cert", namespace: "demo" },
      ...extra,
    });
  const b64 = (s: string) => Buffer.from(s).toString("base64");

  it("accepts a kubernetes.io/tls Secret from data or stringData, and an Opaque one", () => {
    expect(
      secret({ type: "kubernetes.io/tls", data: { "tls.crt": b64("cert"), "tls.key": b64("key") } }),
    ).toEqual([]);
    expect(
      secret({ type: "kubernetes.io/tls", data: { "tls.crt": b64("cert") }, stringData: { "tls.key": "k" } }),
    ).toEqual([]);
    expect(secret({ type: "Opaque", data: { password: b64("x") } })).toEqual([]);
  });

  it("needs tls.crt and tls.key in a kubernetes.io/tls Secret", () => {
    const problems = secret({ type: "kubernetes.io/tls", data: { "tls.crt": b64("cert") } });
    expect(paths(problems)).toEqual(['data["tls.key"]']);
    expect(problems[0]!.message).toContain("kubernetes.io/tls");
    expect(paths(secret({ type: "kubernetes.io/tls" }))).toEqual(['data["tls.crt"]', 'data["tls.key"]']);
  });

  it("refuses data that is not base64, and values that are not strings", () => {
    const problems = secret({ data: { "tls.crt": "-----BEGIN CERTIFICATE-----" } });
    expect(paths(problems)).toEqual(['data["tls.crt"]']);
    expect(problems[0]!.message).toContain("base64");
    // Plain text belongs in stringData, which is not base64.
    expect(secret({ stringData: { "tls.crt": "-----BEGIN CERTIFICATE-----" } })).toEqual([]);
    expect(paths(secret({ stringData: { n: 1 } }))).toContain("stringData.n");
  });
});
