import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type TLSSocket } from "node:tls";
import { CertificateAuthority } from "@ambient/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { originateTls, type UpstreamTls } from "./tls-origination.js";

let dir: string;
let server: Server;
let port: number;
const files: Record<string, string> = {};
const peers: (string | undefined)[] = [];

beforeAll(async () => {
  // A CA of our own: a serving certificate for api.example.com, and another to present as a client.
  const opts = { trustDomain: "cluster.local" };
  const ca = await CertificateAuthority.fromPem(await CertificateAuthority.generateSelfSigned(opts), opts);
  const serving = await ca.issueServingCertificate({ dnsNames: ["api.example.com"], ttlSeconds: 3600 });
  const client = await ca.issueServingCertificate({ dnsNames: ["client.example.com"], ttlSeconds: 3600 });
  dir = await mkdtemp(join(tmpdir(), "ambient-tls-origination-"));
  for (const [name, pem] of Object.entries({
    ca: ca.rootCertPem,
    cert: client.certChainPem.join(""),
    key: client.privateKeyPem,
  })) {
    files[name] = join(dir, `${name}.pem`);
    await writeFile(files[name], pem);
  }
  // Asks for a client certificate, and records whose it got.
  server = createServer(
    {
      cert: serving.certChainPem.join(""),
      key: serving.privateKeyPem,
      ca: ca.rootCertPem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (s: TLSSocket) => {
      // The names of the certificate the client presented, if any.
      peers.push(s.getPeerCertificate().subjectaltname);
      s.end("hello");
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

function tcp(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

const simple = (extra: Partial<UpstreamTls> = {}): UpstreamTls => ({
  mode: "SIMPLE",
  servername: "api.example.com",
  subjectAltNames: [],
  caCertificates: files.ca!,
  insecureSkipVerify: false,
  ...extra,
});

async function read(s: TLSSocket): Promise<string> {
  let text = "";
  for await (const chunk of s) text += chunk;
  return text;
}

describe("originateTls", () => {
  it("SIMPLE: verifies the server against the rule's CA and the SNI name", async () => {
    const s = await originateTls(await tcp(), simple(), 5_000, undefined);
    expect(await read(s)).toBe("hello");
    await expect(
      originateTls(await tcp(), simple({ servername: "other.example.com" }), 5_000, undefined),
    ).rejects.toThrow(/TLS origination to other\.example\.com: .*other\.example\.com/);
  });

  it("without the CA the server is not trusted, unless insecureSkipVerify", async () => {
    const noCa = simple();
    delete noCa.caCertificates;
    await expect(originateTls(await tcp(), noCa, 5_000, undefined)).rejects.toThrow(
      /TLS origination to api\.example\.com/,
    );
    const s = await originateTls(await tcp(), { ...noCa, insecureSkipVerify: true }, 5_000, undefined);
    expect(await read(s)).toBe("hello");
  });

  it("subjectAltNames replace the SNI check", async () => {
    const ok = await originateTls(
      await tcp(),
      simple({ subjectAltNames: ["api.example.com"] }),
      5_000,
      undefined,
    );
    expect(await read(ok)).toBe("hello");
    await expect(
      originateTls(await tcp(), simple({ subjectAltNames: ["spiffe://x/ns/a/sa/b"] }), 5_000, undefined),
    ).rejects.toThrow(/none of spiffe:\/\/x\/ns\/a\/sa\/b/);
  });

  it("MUTUAL presents the client certificate; refuses without one, and refuses credentialName", async () => {
    const before = peers.length;
    const s = await originateTls(
      await tcp(),
      simple({ mode: "MUTUAL", clientCertificate: files.cert!, privateKey: files.key! }),
      5_000,
      undefined,
    );
    expect(await read(s)).toBe("hello");
    expect(peers.slice(before)).toEqual(["DNS:client.example.com"]);
    await expect(originateTls(await tcp(), simple({ mode: "MUTUAL" }), 5_000, undefined)).rejects.toThrow(
      /MUTUAL needs clientCertificate and privateKey/,
    );
    await expect(
      originateTls(await tcp(), simple({ credentialName: "api-cert" }), 5_000, undefined),
    ).rejects.toThrow(/credentialName api-cert is not supported/);
    await expect(
      originateTls(await tcp(), simple({ caCertificates: join(dir, "missing.pem") }), 5_000, undefined),
    ).rejects.toThrow(/cannot read the DestinationRule's caCertificates/);
  });
});
