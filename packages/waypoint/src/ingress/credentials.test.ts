import { type AddressInfo, createServer, type Server } from "node:net";
import { connect, TLSSocket } from "node:tls";
import { CertificateAuthority, createLogger, type L7Resource } from "@ambient/core";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCredential, loadCredentials } from "./credentials.js";

interface Pair {
  cert: string;
  key: string;
  root: string;
}

let shop: Pair;
let other: Pair;

beforeAll(async () => {
  const opts = { trustDomain: "cluster.local" };
  const ca = await CertificateAuthority.fromPem(await CertificateAuthority.generateSelfSigned(opts), opts);
  const issue = async (dnsNames: string[]): Promise<Pair> => {
    const c = await ca.issueServingCertificate({ dnsNames, ttlSeconds: 3600 });
    return { cert: c.certChainPem.join(""), key: c.privateKeyPem, root: ca.rootCertPem };
  };
  shop = await issue(["shop.example.com"]);
  other = await issue(["other.example.com"]);
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

function secret(name: string, data: Record<string, string>, namespace = "istio-system"): L7Resource {
  return {
    kind: "Secret",
    apiVersion: "v1",
    namespace,
    name,
    spec: { type: "kubernetes.io/tls", data },
    labels: {},
    annotations: {},
  };
}

describe("loadCredential", () => {
  it("a certificate and its key become a context that serves the certificate", async () => {
    const result = loadCredential(secret("shop", { "tls.crt": b64(shop.cert), "tls.key": b64(shop.key) }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warning).toBeUndefined();
    expect(Date.parse(result.credential.notAfter)).toBeGreaterThan(Date.now());
    // The context really serves it: a client trusting the CA verifies shop.example.com.
    const server: Server = createServer((socket) => {
      const tls = new TLSSocket(socket, { isServer: true, secureContext: result.credential.context });
      tls.on("error", () => {});
      tls.on("secure", () => tls.end("ok"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const peer = await new Promise<string>((resolve, reject) => {
        const client = connect({
          host: "127.0.0.1",
          port: (server.address() as AddressInfo).port,
          servername: "shop.example.com",
          ca: shop.root,
        });
        client.on("secureConnect", () => {
          resolve(String(client.getPeerCertificate().subjectaltname));
          client.destroy();
        });
        client.on("error", reject);
      });
      expect(peer).toContain("DNS:shop.example.com");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("the generic keys cert and key are read too", () => {
    expect(loadCredential(secret("generic", { cert: b64(shop.cert), key: b64(shop.key) })).ok).toBe(true);
  });

  it("the key of another certificate is refused with why", () => {
    const result = loadCredential(secret("mixed", { "tls.crt": b64(shop.cert), "tls.key": b64(other.key) }));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^tls\.key cannot be used with tls\.crt \(.+\)$/);
  });

  it("a tls.crt that is not PEM is refused", () => {
    const result = loadCredential(
      secret("junk", { "tls.crt": b64("not a certificate"), "tls.key": b64(shop.key) }),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^tls\.crt is not a PEM certificate/);
  });

  it("a tls.key that is not PEM is refused", () => {
    const result = loadCredential(
      secret("junk", { "tls.crt": b64(shop.cert), "tls.key": b64("-----BEGIN nothing") }),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^tls\.key cannot be used/);
  });

  it.each<[string, Record<string, string> | undefined]>([
    ["no tls.key", { "tls.crt": "x" }],
    ["no tls.crt", { "tls.key": "x" }],
    ["empty values", { "tls.crt": "", "tls.key": "" }],
    ["no data", undefined],
  ])("%s is refused", (_name, data) => {
    const r = secret("missing", data ?? {});
    if (data === undefined) r.spec = { type: "kubernetes.io/tls" };
    expect(loadCredential(r)).toEqual({ ok: false, reason: "has no tls.crt and tls.key" });
  });

  it("an expired certificate is served with a warning; so is one not valid yet", () => {
    const s = secret("shop", { "tls.crt": b64(shop.cert), "tls.key": b64(shop.key) });
    const later = loadCredential(s, Date.now() + 2 * 3600_000);
    expect(later.ok).toBe(true);
    expect(later.warning).toMatch(/^its certificate expired at .+; clients will refuse it$/);
    const earlier = loadCredential(s, Date.now() - 24 * 3600_000);
    expect(earlier.ok).toBe(true);
    expect(earlier.warning).toMatch(/is not valid before/);
  });
});

describe("loadCredentials", () => {
  it("keys usable Secrets by namespace/name, logs the others once and skips other kinds", () => {
    const lines: { level: string; msg: string; secret: string }[] = [];
    const logger = createLogger({
      level: "debug",
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    const creds = loadCredentials(
      [
        secret("shop", { "tls.crt": b64(shop.cert), "tls.key": b64(shop.key) }, "shop"),
        secret("broken", { "tls.crt": b64(shop.cert) }, "shop"),
        { ...secret("not-a-secret", {}), kind: "ConfigMap" },
      ],
      logger,
    );
    expect([...creds.keys()]).toEqual(["shop/shop"]);
    expect(lines).toEqual([
      expect.objectContaining({
        level: "error",
        secret: "shop/broken",
        msg: "Secret shop/broken has no tls.crt and tls.key; its servers refuse TLS handshakes",
      }),
    ]);
  });
});
