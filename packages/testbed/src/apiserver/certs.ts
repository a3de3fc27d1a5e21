// The test cluster's PKI, made fresh per server: a self-signed CA, a serving certificate for the
// loopback names, and an admin client certificate (CN=kubernetes-admin, O=system:masters, as
// kubeadm issues it). ECDSA P-256; Go's TLS (kubectl, helm) and Node both accept it.

import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 24 * 3600 * 1000;

export interface Pki {
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END PRIVATE KEY-----\n`.replace(
    /\n\n/g,
    "\n",
  );
}

function serial(): string {
  // Positive 16-byte serial (leading nibble < 8), as RFC 5280 asks.
  return `0${Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString("hex")}`;
}

export async function createPki(hosts: { ips: string[]; dns: string[] }): Promise<Pki> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 365 * DAY_MS);
  const caKeys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=ambient-testbed-ca",
    notBefore,
    notAfter,
    keys: caKeys as never,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as never),
    ],
  });

  const leaf = async (subject: string, usage: string, san?: x509.SubjectAlternativeNameExtension) => {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey as never,
      signingKey: caKeys.privateKey as never,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([usage]),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false),
        ...(san ? [san] : []),
      ],
    });
    return { certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey) };
  };

  const server = await leaf(
    "CN=kube-apiserver",
    x509.ExtendedKeyUsage.serverAuth,
    new x509.SubjectAlternativeNameExtension([
      ...hosts.dns.map((value) => ({ type: "dns" as const, value })),
      ...hosts.ips.map((value) => ({ type: "ip" as const, value })),
    ]),
  );
  const client = await leaf("CN=kubernetes-admin, O=system:masters", x509.ExtendedKeyUsage.clientAuth);
  return {
    caPem: ca.toString("pem"),
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    clientCertPem: client.certPem,
    clientKeyPem: client.keyPem,
  };
}

/** User and groups from a verified client certificate: CN is the user, each O a group. */
export function userFromCertificate(raw: Buffer): { username: string; groups: string[] } {
  const cert = new X509Certificate(raw);
  const fields = cert.subject.split("\n");
  const username = fields.find((f) => f.startsWith("CN="))?.slice(3) ?? "";
  const groups = fields.filter((f) => f.startsWith("O=")).map((f) => f.slice(2));
  return { username, groups: [...groups, "system:authenticated"] };
}
