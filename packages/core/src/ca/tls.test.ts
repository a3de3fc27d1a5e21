// Interop: issued keys and chains work as-is with node:tls for mutual TLS 1.3, and the peer's
// chain as node:tls exposes it verifies back to the same SPIFFE identity.

import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import type { CertificateAuthority } from "./authority.js";
import { createTestRoot, testIdentity } from "./testing.js";
import { verifyWorkloadChain } from "./verify.js";

const servers: tls.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function peerChainPem(socket: tls.TLSSocket): string[] {
  const chain: string[] = [];
  let cert = socket.getPeerX509Certificate();
  while (cert) {
    chain.push(cert.toString());
    const issuer: typeof cert | undefined = cert.issuerCertificate;
    if (!issuer || issuer.raw.equals(cert.raw)) break;
    cert = issuer;
  }
  return chain;
}

async function mutualTls(ca: CertificateAuthority) {
  const serverId = testIdentity("default", "server");
  const clientId = testIdentity("default", "client");
  const serverCert = await ca.issueWorkloadCertificate(serverId);
  const clientCert = await ca.issueWorkloadCertificate(clientId);
  const ca0 = ca.rootCertsPem;

  let serverSawChain: string[] = [];
  const server = tls.createServer(
    {
      key: serverCert.privateKeyPem,
      // node:tls wants the chain without the root: the peer has it.
      cert: serverCert.certChainPem.slice(0, -1).join(""),
      ca: ca0,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    },
    (socket) => {
      serverSawChain = peerChainPem(socket);
      socket.end("hello");
    },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const client = tls.connect({
    host: "127.0.0.1",
    port,
    key: clientCert.privateKeyPem,
    cert: clientCert.certChainPem.slice(0, -1).join(""),
    ca: ca0,
    minVersion: "TLSv1.3",
    // SPIFFE identities are URI SANs, not hostnames: verify the identity ourselves instead.
    checkServerIdentity: () => undefined,
  });
  const body = await new Promise<string>((resolve, reject) => {
    let data = "";
    client.on("data", (d) => {
      data += d;
    });
    client.on("end", () => resolve(data));
    client.on("error", reject);
  });
  const protocol = client.getProtocol();
  const clientSawChain = peerChainPem(client);
  client.destroy();
  return { body, protocol, serverId, clientId, serverSawChain, clientSawChain };
}

describe("issued certificates with node:tls", () => {
  it("work for a mutual TLS 1.3 server and client (self-signed root)", async () => {
    const ca = await (await createTestRoot()).toAuthority();
    const r = await mutualTls(ca);
    expect(r.body).toBe("hello");
    expect(r.protocol).toBe("TLSv1.3");
    expect(verifyWorkloadChain(r.clientSawChain, ca.rootCertsPem).identity.equals(r.serverId)).toBe(true);
    expect(verifyWorkloadChain(r.serverSawChain, ca.rootCertsPem).identity.equals(r.clientId)).toBe(true);
  });

  it("work through a plugged intermediate CA", async () => {
    const intermediate = await (await createTestRoot()).createIntermediate();
    const ca = await intermediate.toAuthority();
    const r = await mutualTls(ca);
    expect(r.body).toBe("hello");
    expect(verifyWorkloadChain(r.serverSawChain, ca.rootCertsPem).identity.equals(r.clientId)).toBe(true);
  });
});

describe("the control plane's serving certificate", () => {
  async function handshake(ca: CertificateAuthority, connect: tls.ConnectionOptions): Promise<string> {
    const cert = await ca.issueServingCertificate({
      dnsNames: ["istiod.istio-system.svc", "istiod"],
      ipAddresses: ["127.0.0.1"],
      ttlSeconds: 3600,
    });
    const server = tls.createServer(
      { key: cert.privateKeyPem, cert: cert.certChainPem.slice(0, -1).join("") },
      (socket) => socket.end("ok"),
    );
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return new Promise<string>((resolve, reject) => {
      const client = tls.connect({ host: "127.0.0.1", port, ca: ca.rootCertsPem, ...connect });
      let data = "";
      client.on("data", (d) => {
        data += d;
      });
      client.on("end", () => resolve(data));
      client.on("error", reject);
    });
  }

  it("verifies with the mesh root for each DNS name and IP it names, through an intermediate too", async () => {
    const root = await createTestRoot();
    for (const ca of [await root.toAuthority(), await (await root.createIntermediate()).toAuthority()]) {
      expect(await handshake(ca, { servername: "istiod.istio-system.svc" })).toBe("ok");
      expect(await handshake(ca, { servername: "istiod" })).toBe("ok");
      // No servername: Node checks the IP it connected to against the iPAddress SANs.
      expect(await handshake(ca, {})).toBe("ok");
    }
  });

  it("is refused for a name it does not carry", async () => {
    const ca = await (await createTestRoot()).toAuthority();
    await expect(handshake(ca, { servername: "istiod.other.svc" })).rejects.toMatchObject({
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
  });

  it("refuses to issue without a name and for an IP that is not one", async () => {
    const ca = await (await createTestRoot()).toAuthority();
    await expect(ca.issueServingCertificate({ dnsNames: [], ttlSeconds: 60 })).rejects.toThrow(/no DNS name/);
    await expect(
      ca.issueServingCertificate({ dnsNames: ["a"], ipAddresses: ["10.0.0.300"], ttlSeconds: 60 }),
    ).rejects.toThrow(/"10.0.0.300" is not an IP/);
  });
});
