import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import { SpiffeId } from "../identity/spiffe.js";
import { CertificateAuthority } from "./authority.js";
import { describeCertificate } from "./certificate-info.js";
import { createWorkloadCsr } from "./csr.js";
import { createTestRoot, testIdentity } from "./testing.js";
import { verifyWorkloadChain } from "./verify.js";
import { x509 } from "./x509.js";

const TD = "cluster.local";
const ID = testIdentity("bookinfo", "reviews");
const dirs: string[] = [];
const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
})();

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ambient-ca-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function caught(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error("expected a rejection");
}

describe("CertificateAuthority.loadOrCreate", () => {
  it("creates an Istio-style self-signed root and writes the cacerts layout", async () => {
    const dir = join(await tempDir(), "nested", "state");
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const root = new X509Certificate(ca.rootCertPem);
    expect(root.subject).toBe("O=cluster.local");
    expect(root.issuer).toBe("O=cluster.local");
    expect(root.ca).toBe(true);
    const years = (Date.parse(root.validTo) - Date.parse(root.validFrom)) / (365 * 86400_000);
    expect(years).toBeGreaterThan(9.99);
    const ku = new x509.X509Certificate(root.raw).getExtension(x509.KeyUsagesExtension);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);

    for (const f of ["ca-cert.pem", "root-cert.pem", "cert-chain.pem"]) {
      expect(await readFile(join(dir, f), "utf8")).toBe(ca.rootCertPem);
    }
    expect((await stat(join(dir, "ca-key.pem"))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, "ca-key.pem"), "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it("returns the same root on restart, and certificates from either verify", async () => {
    const dir = await tempDir();
    const first = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const before = await first.issueWorkloadCertificate(ID);
    const second = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    expect(second.rootCertPem).toBe(first.rootCertPem);
    expect(second.rootCertsPem).toEqual([first.rootCertPem]);
    const after = await second.issueWorkloadCertificate(ID);
    for (const cert of [before, after]) {
      expect(verifyWorkloadChain(cert.certChainPem, first.rootCertsPem).identity.equals(ID)).toBe(true);
    }
  });

  it("refuses a state folder with a certificate but no key", async () => {
    const dir = await tempDir();
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    await rm(join(dir, "ca-key.pem"));
    const err = await caught(CertificateAuthority.loadOrCreate(dir, { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CA_LOAD_FAILED);
    expect(err.message).toContain(`${join(dir, "ca-key.pem")} does not`);
    expect(ca.rootCertPem).toBeTruthy();
  });

  it("rejects an invalid trust domain before touching the disk", async () => {
    const err = await caught(
      CertificateAuthority.loadOrCreate(await tempDir(), { trustDomain: "Cluster.Local" }),
    );
    expect(err.code).toBe(ErrorCode.IDENTITY_MALFORMED);
  });
});

describe("CertificateAuthority.sign", () => {
  it("issues a leaf shaped like Istio's, chain leaf first and root last", async () => {
    let now = new Date("2030-01-01T00:00:00Z");
    const root = await createTestRoot({
      trustDomain: TD,
      notBefore: new Date("2029-01-01T00:00:00Z"),
      notAfter: new Date("2035-01-01T00:00:00Z"),
    });
    const ca = await root.toAuthority({ now: () => now });
    const { csrPem } = await createWorkloadCsr(ID);
    const signed = await ca.sign(csrPem, { ttlSeconds: 3600 });

    expect(signed.certChainPem).toHaveLength(2);
    expect(signed.certChainPem[1]).toBe(ca.rootCertPem);
    expect(signed.notAfter.toISOString()).toBe("2030-01-01T01:00:00.000Z");
    expect(signed.serial).toMatch(/^[0-9a-f]{30,32}$/);

    const leaf = new x509.X509Certificate(signed.certChainPem[0]!);
    expect(leaf.subject).toBe("");
    expect(leaf.notBefore.toISOString()).toBe("2029-12-31T23:59:00.000Z");
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(true);
    expect(san.names.toJSON()).toEqual([{ type: "url", value: ID.toString() }]);
    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(false);
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    const akid = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    const skid = new x509.X509Certificate(ca.rootCertPem).getExtension(
      x509.SubjectKeyIdentifierExtension,
    )?.keyId;
    expect(akid).toBeDefined();
    expect(akid).toBe(skid);

    const verified = verifyWorkloadChain(signed.certChainPem, ca.rootCertsPem, { trustDomain: TD, now });
    expect(verified.identity.equals(ID)).toBe(true);
    expect(verified.serial).toBe(signed.serial);
    expect(verified.notAfter).toEqual(signed.notAfter);

    now = new Date("2030-01-01T02:00:00Z");
    expect(() => verifyWorkloadChain(signed.certChainPem, ca.rootCertsPem, { now })).toThrow(/expired/);
  });

  it("defaults to a day and caps the leaf at the CA's own expiry", async () => {
    const now = Date.now();
    const root = await createTestRoot({ notAfter: new Date(now + 2 * 3600_000) });
    const ca = await root.toAuthority();
    const capped = await ca.issueWorkloadCertificate(ID);
    expect(capped.notAfter.getTime()).toBe(Date.parse(new X509Certificate(root.certPem).validTo));

    const fresh = await (await createTestRoot()).toAuthority();
    const d = await fresh.issueWorkloadCertificate(ID);
    expect(Math.abs(d.notAfter.getTime() - (Date.now() + 86400_000))).toBeLessThan(5000);
    const serials = new Set([d.serial, (await fresh.issueWorkloadCertificate(ID)).serial]);
    expect(serials.size).toBe(2);
  });

  it("reports serials exactly as OpenSSL prints them, including ones with a leading zero byte", async () => {
    const ca = await (await createTestRoot()).toAuthority();
    const { csrPem } = await createWorkloadCsr(ID);
    for (let i = 0; i < 300; i++) {
      const signed = await ca.sign(csrPem);
      expect(describeCertificate(signed.certChainPem[0]!).serial).toBe(signed.serial);
    }
  });

  it("encodes validity after 2049 as GeneralizedTime (RFC 5280 §4.1.2.5)", async () => {
    const now = new Date("2049-12-31T23:30:00Z");
    const root = await createTestRoot({
      notBefore: new Date("2049-01-01T00:00:00Z"),
      notAfter: new Date("2051-01-01T00:00:00Z"),
    });
    const ca = await root.toAuthority({ now: () => now });
    const cert = await ca.issueWorkloadCertificate(ID, 3600);
    expect(cert.notAfter.toISOString()).toBe("2050-01-01T00:30:00.000Z");
    const v = verifyWorkloadChain(cert.certChainPem, ca.rootCertsPem, { now });
    expect(v.notAfter.toISOString()).toBe("2050-01-01T00:30:00.000Z");
    expect(v.notBefore.toISOString()).toBe("2049-12-31T23:29:00.000Z");
  });

  it("refuses a CSR for another identity than the caller may hold", async () => {
    const ca = await (await createTestRoot()).toAuthority();
    const { csrPem } = await createWorkloadCsr(testIdentity("kube-system", "admin"));
    const err = await caught(ca.sign(csrPem, { identity: ID }));
    expect(err.code).toBe(ErrorCode.CSR_FORBIDDEN);
    expect(err.message).toContain("spiffe://cluster.local/ns/kube-system/sa/admin");
    expect(err.message).toContain(ID.toString());
  });

  it("refuses a CSR for another trust domain, and silly TTLs", async () => {
    const ca = await (await createTestRoot()).toAuthority();
    const { csrPem } = await createWorkloadCsr(SpiffeId.parse("spiffe://other.td/ns/a/sa/b"));
    expect((await caught(ca.sign(csrPem))).code).toBe(ErrorCode.CERT_WRONG_TRUST_DOMAIN);
    const ok = (await createWorkloadCsr(ID)).csrPem;
    expect((await caught(ca.sign(ok, { ttlSeconds: 0 }))).message).toContain("not a positive number");
    expect((await caught(ca.sign(ok, { ttlSeconds: 91 * 86400 }))).message).toContain(
      "exceeds this CA's maximum",
    );
  });
});

describe("CertificateAuthority.fromPluggedFolder", () => {
  it("signs with an intermediate; the chain is leaf, intermediate, root and verifies", async () => {
    const root = await createTestRoot({ trustDomain: TD });
    const intermediate = await root.createIntermediate();
    const dir = await tempDir();
    await intermediate.writePluggedFolder(dir);
    const ca = await CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD });
    expect(ca.rootCertPem).toBe(root.certPem);
    const cert = await ca.issueWorkloadCertificate(ID, 600);
    expect(cert.certChainPem).toEqual([expect.any(String), intermediate.certPem, root.certPem]);
    expect(
      verifyWorkloadChain(cert.certChainPem, [root.certPem], { trustDomain: TD }).identity.equals(ID),
    ).toBe(true);
    // Peers that send only leaf + intermediate (no root) verify as well.
    expect(verifyWorkloadChain(cert.certChainPem.slice(0, 2), [root.certPem]).identity.equals(ID)).toBe(true);
  });

  it("accepts cert-chain.pem without the ca-cert itself (a common variant)", async () => {
    const root = await createTestRoot();
    const intermediate = await root.createIntermediate();
    const dir = await tempDir();
    await intermediate.writePluggedFolder(dir);
    await writeFile(join(dir, "cert-chain.pem"), root.certPem);
    const ca = await CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD });
    expect(ca.caChainPem).toEqual([intermediate.certPem, root.certPem]);
  });

  it("names ca-key.pem when the key does not match the certificate", async () => {
    const root = await createTestRoot();
    const intermediate = await root.createIntermediate();
    const other = await root.createIntermediate();
    const dir = await tempDir();
    await intermediate.writePluggedFolder(dir);
    await writeFile(join(dir, "ca-key.pem"), other.keyPem);
    const err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CA_LOAD_FAILED);
    expect(err.message).toContain(join(dir, "ca-key.pem"));
    expect(err.message).toContain("does not match the certificate");
  });

  it("names root-cert.pem when the chain does not lead to it", async () => {
    const root = await createTestRoot();
    const intermediate = await root.createIntermediate();
    const stranger = await createTestRoot({ subject: "O=stranger" });
    const dir = await tempDir();
    await intermediate.writePluggedFolder(dir);
    await writeFile(join(dir, "root-cert.pem"), stranger.certPem);
    let err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CA_LOAD_FAILED);
    expect(err.message).toContain(`${join(dir, "root-cert.pem")}: does not contain the root that`);
    expect(err.message).toContain('cert-chain.pem ends with, certificate "O=cluster.local"');

    // cert-chain.pem without the root: the message names the issuer and what root-cert.pem holds.
    await writeFile(join(dir, "cert-chain.pem"), intermediate.certPem);
    err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CA_LOAD_FAILED);
    expect(err.message).toContain(
      'root-cert.pem: does not hold the root that issued the chain: certificate "O=cluster.local, CN=Intermediate CA"',
    );
    expect(err.message).toContain('was issued by "O=cluster.local", but it holds only "O=stranger"');

    // Same name, different key (another cluster's self-signed root).
    await writeFile(join(dir, "root-cert.pem"), (await createTestRoot()).certPem);
    err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.message).toContain("another CA with the same name");
  });

  it("names a missing file, a non-CA ca-cert and an expired ca-cert", async () => {
    const root = await createTestRoot();
    const dir = await tempDir();
    await root.writePluggedFolder(dir);
    await rm(join(dir, "cert-chain.pem"));
    let err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.message).toBe(`${join(dir, "cert-chain.pem")} is missing`);

    const leaf = await root.issueLeaf();
    await root.writePluggedFolder(dir);
    await writeFile(join(dir, "ca-cert.pem"), leaf.certChainPem[0]!);
    await writeFile(join(dir, "ca-key.pem"), leaf.privateKeyPem);
    err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CA_LOAD_FAILED);
    expect(err.message).toMatch(
      /ca-cert\.pem: certificate "\(empty\)" \(serial [0-9a-f]+\) is not a CA certificate/,
    );

    const expired = await root.createIntermediate({
      notBefore: new Date(Date.now() - 86400_000),
      notAfter: new Date(Date.now() - 1000),
    });
    await expired.writePluggedFolder(dir);
    err = await caught(CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CA_LOAD_FAILED);
    expect(err.message).toMatch(
      /ca-cert\.pem: certificate "O=cluster.local, CN=Intermediate CA" .* expired at/,
    );
  });

  it.skipIf(!hasOpenssl)("loads an openssl-made RSA plugged CA (Istio's tools/certs style)", async () => {
    const dir = await tempDir();
    const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    run([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "root-key.pem",
      "-out",
      "root-cert.pem",
      "-days",
      "30",
      "-subj",
      "/O=Istio/CN=Root CA",
      "-addext",
      "basicConstraints=critical,CA:true",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    await writeFile(
      join(dir, "ext.cnf"),
      "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    run([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca-key.pem",
      "-out",
      "ca.csr",
      "-subj",
      "/O=Istio/CN=Intermediate CA/L=cluster1",
    ]);
    run([
      "x509",
      "-req",
      "-in",
      "ca.csr",
      "-CA",
      "root-cert.pem",
      "-CAkey",
      "root-key.pem",
      "-CAcreateserial",
      "-out",
      "ca-cert.pem",
      "-days",
      "20",
      "-extfile",
      "ext.cnf",
    ]);
    await writeFile(
      join(dir, "cert-chain.pem"),
      (await readFile(join(dir, "ca-cert.pem"), "utf8")) +
        (await readFile(join(dir, "root-cert.pem"), "utf8")),
    );
    const ca = await CertificateAuthority.fromPluggedFolder(dir, { trustDomain: TD });
    const cert = await ca.issueWorkloadCertificate(ID);
    expect(cert.certChainPem).toHaveLength(3);
    expect(verifyWorkloadChain(cert.certChainPem, ca.rootCertsPem).identity.equals(ID)).toBe(true);
    // And OpenSSL's own verifier agrees.
    await writeFile(join(dir, "leaf.pem"), cert.certChainPem[0]!);
    await writeFile(join(dir, "int.pem"), cert.certChainPem[1]!);
    expect(
      run(["verify", "-CAfile", "root-cert.pem", "-untrusted", "int.pem", "leaf.pem"]).toString(),
    ).toContain("OK");
  });
});
