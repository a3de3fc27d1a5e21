// Unit tests for the pieces under HBONE's handshake: SAN parsing, the client's identity check, the
// server's peer check, `:authority` parsing and the TLS error messages.

import type { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { beforeAll, describe, expect, it } from "vitest";
import { formatAuthority, parseAuthority } from "./authority.js";
import { HboneErrorCode } from "./errors.js";
import { createTestMesh, type TestMesh } from "./testing.js";
import { clientConnectError } from "./tls-errors.js";
import {
  clientTlsOptions,
  peerIdentity,
  serverSecureContextOptions,
  spiffeIdFromAltNames,
} from "./tls-options.js";

let mesh: TestMesh;
beforeAll(async () => {
  mesh = await createTestMesh();
});

describe("spiffeIdFromAltNames", () => {
  it("finds the one SPIFFE URI among other SANs, quoted or not", () => {
    const id = "spiffe://cluster.local/ns/a/sa/b";
    expect(spiffeIdFromAltNames(`URI:${id}`).toString()).toBe(id);
    expect(spiffeIdFromAltNames(`DNS:a.example, URI:${id}`).toString()).toBe(id);
    expect(spiffeIdFromAltNames(`URI:${JSON.stringify(id)}`).toString()).toBe(id);
  });

  it("explains what is missing or extra", () => {
    expect(spiffeIdFromAltNames(undefined)).toMatch(/no subject alternative names/);
    expect(spiffeIdFromAltNames("DNS:a.example")).toMatch(/has no URI SAN/);
    expect(spiffeIdFromAltNames("URI:spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/c/sa/d")).toMatch(
      /has 2 URI SANs/,
    );
    expect(spiffeIdFromAltNames("URI:https://example.com")).toMatch(/not a SPIFFE ID/);
  });
});

describe("clientTlsOptions", () => {
  it("is TLS 1.3 only, ALPN h2, no SNI, presents the chain without the root", () => {
    const opts = clientTlsOptions(mesh.clientCert, mesh.roots, [mesh.serverId.toString()]);
    expect(opts).toMatchObject({
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      ALPNProtocols: ["h2"],
      rejectUnauthorized: true,
      servername: "",
      ca: mesh.roots,
      key: mesh.clientCert.privateKeyPem,
    });
    expect(opts.cert).toBe(mesh.clientCert.certChainPem.slice(0, -1).join(""));
    expect(serverSecureContextOptions(mesh.serverCert, mesh.roots)).toMatchObject({
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      cert: mesh.serverCert.certChainPem.slice(0, -1).join(""),
    });
  });

  it("accepts only an expected server identity", () => {
    const check = clientTlsOptions(mesh.clientCert, mesh.roots, [mesh.serverId.toString()], {
      destination: "10.0.0.2:15008",
    }).checkServerIdentity!;
    const peer = (san: string) => ({ subjectaltname: san }) as PeerCertificate;
    expect(check("", peer(`URI:${mesh.serverId}`))).toBeUndefined();
    const wrong = check("", peer("URI:spiffe://cluster.local/ns/x/sa/y")) as Error & { code: string };
    expect(wrong.code).toBe(HboneErrorCode.IDENTITY_MISMATCH);
    expect(wrong.message).toBe(
      `server identity spiffe://cluster.local/ns/x/sa/y at 10.0.0.2:15008 is not one of [${mesh.serverId}]`,
    );
    const none = check("", peer("DNS:x")) as Error & { code: string };
    expect(none.code).toBe(HboneErrorCode.PEER_UNTRUSTED);
  });
});

describe("peerIdentity", () => {
  const socket = (
    cert: Partial<X509Certificate> | undefined,
    authorized = true,
    authorizationError?: string,
  ) => ({
    getPeerX509Certificate: () => cert as X509Certificate | undefined,
    authorized,
    authorizationError: authorizationError as unknown as Error,
  });

  it("returns the client's SPIFFE ID in our trust domain", () => {
    const id = peerIdentity(
      socket({ subjectAltName: `URI:${mesh.clientId}`, serialNumber: "AB" }),
      "cluster.local",
    );
    expect(id.equals(mesh.clientId)).toBe(true);
  });

  it("refuses no certificate, an unverified chain, no SPIFFE ID, another trust domain", () => {
    const refuse = (s: ReturnType<typeof socket>) => {
      try {
        peerIdentity(s, "cluster.local");
      } catch (err) {
        expect((err as { code: string }).code).toBe(HboneErrorCode.PEER_UNTRUSTED);
        return (err as Error).message;
      }
      throw new Error("accepted");
    };
    expect(refuse(socket(undefined))).toBe("client presented no certificate");
    expect(refuse(socket({ subjectAltName: "URI:x", serialNumber: "AB" }, false, "CERT_HAS_EXPIRED"))).toBe(
      "client certificate has expired (CERT_HAS_EXPIRED)",
    );
    expect(refuse(socket({ subjectAltName: "DNS:a", serialNumber: "AB" }))).toMatch(
      /^client certificate \(serial ab\) has no URI SAN/,
    );
    expect(refuse(socket({ subjectAltName: "URI:spiffe://other.td/ns/a/sa/b", serialNumber: "AB" }))).toBe(
      'client identity spiffe://other.td/ns/a/sa/b is in trust domain "other.td", not "cluster.local"',
    );
  });
});

describe("parseAuthority", () => {
  it("accepts ip:port and [ipv6]:port only", () => {
    expect(parseAuthority("10.0.0.1:8080")).toEqual({ address: "10.0.0.1", port: 8080, family: 4 });
    expect(parseAuthority("[fd00::1]:443")).toEqual({ address: "fd00::1", port: 443, family: 6 });
    for (const bad of [
      undefined,
      "",
      "10.0.0.1",
      "10.0.0.1:",
      "10.0.0.1:0",
      "10.0.0.1:08080",
      "10.0.0.1:65536",
      "10.0.0.1:+80",
      "host.example:80",
      "fd00::1:443",
      "[fd00::1]",
      "[fe80::1%eth0]:80",
      "[10.0.0.1]:80",
    ]) {
      expect(parseAuthority(bad), String(bad)).toBeUndefined();
    }
    expect(formatAuthority("fd00::1", 15008)).toBe("[fd00::1]:15008");
    expect(formatAuthority("10.0.0.1", 15008)).toBe("10.0.0.1:15008");
  });
});

describe("clientConnectError", () => {
  it.each([
    ["CERT_HAS_EXPIRED", HboneErrorCode.PEER_UNTRUSTED, "server certificate for 10.0.0.2:15008 has expired"],
    [
      "CERT_NOT_YET_VALID",
      HboneErrorCode.PEER_UNTRUSTED,
      "server certificate for 10.0.0.2:15008 is not yet valid (check clocks)",
    ],
    [
      "SELF_SIGNED_CERT_IN_CHAIN",
      HboneErrorCode.PEER_UNTRUSTED,
      "server certificate for 10.0.0.2:15008 chains to a root that is not the mesh root",
    ],
    [
      "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
      HboneErrorCode.CERT_REJECTED,
      "server 10.0.0.2:15008 rejected our certificate (TLS alert: unknown ca)",
    ],
    [
      "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
      HboneErrorCode.CERT_REJECTED,
      "server 10.0.0.2:15008 requires a client certificate",
    ],
    ["ERR_SSL_WRONG_VERSION_NUMBER", HboneErrorCode.TLS, "server 10.0.0.2:15008 is not speaking TLS"],
    ["ECONNREFUSED", HboneErrorCode.CONNECT_FAILED, "server 10.0.0.2:15008 refused the TCP connection"],
  ])("maps %s", (code, expected, message) => {
    const err = clientConnectError(Object.assign(new Error("node says"), { code }), "10.0.0.2:15008");
    expect(err.code).toBe(expected);
    expect(err.message).toBe(message);
    expect((err.cause as { code: string }).code).toBe(code);
  });
});
