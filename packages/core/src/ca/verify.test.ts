import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import { describeCertificate } from "./certificate-info.js";
import { issueLeafCertificate } from "./issue.js";
import { importSigningKey } from "./keys.js";
import { encodePem } from "./pem.js";
import { createTestRoot, type TestCa, testIdentity } from "./testing.js";
import { verifyWorkloadChain } from "./verify.js";
import { x509 } from "./x509.js";

const TD = "cluster.local";
const ID = testIdentity("default", "sleep");
const HOUR = 3600_000;

let root: TestCa;
beforeAll(async () => {
  root = await createTestRoot({ trustDomain: TD });
});

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error("chain was accepted");
}

describe("verifyWorkloadChain accepts", () => {
  it("leaf + root, returning identity, serial and validity", async () => {
    const leaf = await root.issueLeaf({ identity: ID });
    const v = verifyWorkloadChain(leaf.certChainPem, [root.certPem], { trustDomain: TD });
    expect(v.identity.equals(ID)).toBe(true);
    expect(v.serial).toBe(leaf.serial);
    expect(v.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(v.notBefore.getTime()).toBeLessThan(Date.now());
  });

  it("the leaf alone", async () => {
    const leaf = await root.issueLeaf({ identity: ID });
    expect(verifyWorkloadChain(leaf.certChainPem.slice(0, 1), [root.certPem]).identity.equals(ID)).toBe(true);
  });

  it("a plugged-CA chain root → intermediate → leaf, with or without the root in the chain", async () => {
    const intermediate = await root.createIntermediate();
    const leaf = await intermediate.issueLeaf({ identity: ID });
    expect(leaf.certChainPem).toHaveLength(3);
    expect(verifyWorkloadChain(leaf.certChainPem, [root.certPem]).identity.equals(ID)).toBe(true);
    expect(verifyWorkloadChain(leaf.certChainPem.slice(0, 2), [root.certPem]).identity.equals(ID)).toBe(true);
  });

  it("any of several roots (root rotation), even two with the same name", async () => {
    const next = await createTestRoot({ trustDomain: TD });
    const leaf = await next.issueLeaf({ identity: ID });
    expect(verifyWorkloadChain(leaf.certChainPem, [root.certPem, next.certPem]).identity.equals(ID)).toBe(
      true,
    );
  });
});

describe("verifyWorkloadChain refuses", () => {
  it("an empty chain", () => {
    const err = refusal(() => verifyWorkloadChain([], [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_CHAIN_EMPTY);
  });

  it("unparseable PEM, naming which certificate", async () => {
    const leaf = await root.issueLeaf();
    let err = refusal(() => verifyWorkloadChain(["not a cert"], [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_MALFORMED);
    expect(err.message).toContain("leaf certificate is not a PEM certificate");
    const junk = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
    err = refusal(() => verifyWorkloadChain([leaf.certChainPem[0]!, junk], [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_MALFORMED);
    expect(err.message).toContain("chain certificate 1 cannot be parsed");
  });

  it("an expired leaf, naming it and the time", async () => {
    const notAfter = new Date(Date.now() - HOUR);
    const leaf = await root.issueLeaf({ identity: ID, notBefore: new Date(Date.now() - 2 * HOUR), notAfter });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_EXPIRED);
    const at = new Date(Math.floor(notAfter.getTime() / 1000) * 1000).toISOString();
    expect(err.message).toContain(`leaf certificate "${ID}" (serial ${leaf.serial}) expired at ${at}`);
  });

  it("a leaf that is not yet valid", async () => {
    const leaf = await root.issueLeaf({ identity: ID, notBefore: new Date(Date.now() + HOUR) });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_NOT_YET_VALID);
    expect(err.message).toMatch(
      /leaf certificate "spiffe:\/\/.*" \(serial [0-9a-f]+\) is not valid until 20/,
    );
  });

  it("an expired intermediate, naming it", async () => {
    const old = await root.createIntermediate({
      subject: "O=cluster.local, CN=Old Intermediate",
      notBefore: new Date(Date.now() - 3 * HOUR),
      notAfter: new Date(Date.now() - HOUR),
    });
    const leaf = await old.issueLeaf({
      notBefore: new Date(Date.now() - 2 * HOUR),
      notAfter: new Date(Date.now() + HOUR),
    });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_EXPIRED);
    expect(err.message).toContain('chain certificate 1 "O=cluster.local, CN=Old Intermediate"');
  });

  it("a leaf from another CA, naming the issuer", async () => {
    const other = await createTestRoot({ trustDomain: TD, subject: "O=other-mesh" });
    const leaf = await other.issueLeaf({ identity: ID });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem.slice(0, 1), [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_WRONG_ISSUER);
    expect(err.message).toContain('was issued by "O=other-mesh", which is not a trusted root');
    expect(err.message).toContain('(trusted: "O=cluster.local")');
  });

  it("a leaf from another CA with the same name (two self-signed Istio roots), with or without that root", async () => {
    const twin = await createTestRoot({ trustDomain: TD });
    const leaf = await twin.issueLeaf({ identity: ID });
    for (const chain of [leaf.certChainPem, leaf.certChainPem.slice(0, 1)]) {
      const err = refusal(() => verifyWorkloadChain(chain, [root.certPem]));
      expect(err.code).toBe(ErrorCode.CERT_WRONG_ISSUER);
      expect(err.message).toContain(`leaf certificate "${ID}"`);
      expect(err.message).toContain("another CA with the same name");
    }
  });

  it("a chain presenting an untrusted root", async () => {
    const other = await createTestRoot({ subject: "O=rogue" });
    const leaf = await other.issueLeaf({ identity: ID });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_WRONG_ISSUER);
    expect(err.message).toContain('issued by "O=rogue"');
  });

  it("a tampered signature", async () => {
    const leaf = await root.issueLeaf({ identity: ID });
    const der = Buffer.from(new x509.X509Certificate(leaf.certChainPem[0]!).rawData);
    der[der.length - 1] = der[der.length - 1]! ^ 0x01;
    const err = refusal(() => verifyWorkloadChain([encodePem("CERTIFICATE", der)], [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_BAD_SIGNATURE);
    expect(err.message).toContain('does not verify with the key of its issuer "O=cluster.local"');
  });

  it("chain certificates out of order", async () => {
    const intermediate = await root.createIntermediate();
    const leaf = await intermediate.issueLeaf({ identity: ID });
    const [l, i, r] = leaf.certChainPem as [string, string, string];
    const err = refusal(() => verifyWorkloadChain([l, r, i], [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_WRONG_ISSUER);
    expect(err.message).toContain('but the next certificate is "O=cluster.local"');
  });

  it("an intermediate that is not a CA", async () => {
    const notCa = await root.issueLeaf({ uris: [], subject: "O=cluster.local, CN=sneaky" });
    const sneaky = new x509.X509Certificate(notCa.certChainPem[0]!);
    // Sign a leaf with the non-CA certificate's key: OpenSSL's issuer check refuses it (no CA usage).
    const child = issueLeafCertificate(
      { cert: sneaky, key: await importSigningKey(notCa.privateKeyPem) },
      {
        spki: Buffer.from(sneaky.publicKey.rawData),
        uris: [ID.toString()],
        notBefore: new Date(Date.now() - HOUR),
        notAfter: new Date(Date.now() + HOUR),
      },
    );
    const chain = [encodePem("CERTIFICATE", child.der), notCa.certChainPem[0]!];
    const err = refusal(() => verifyWorkloadChain(chain, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_WRONG_ISSUER);
    expect(err.message).toContain(
      'names issuer "O=cluster.local, CN=sneaky", but that certificate lacks keyUsage keyCertSign',
    );
  });

  it("a leaf that is itself a CA", async () => {
    const leaf = await root.issueLeaf({ identity: ID, isCa: true });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_MALFORMED);
    expect(err.message).toContain("is a CA certificate, not a workload");
  });

  it("a leaf without a SPIFFE SAN", async () => {
    let leaf = await root.issueLeaf({ uris: [], dnsNames: ["reviews.default.svc"], subject: "CN=reviews" });
    let err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_NO_SPIFFE_SAN);
    expect(err.message).toContain('subject "CN=reviews") has no URI SAN');

    leaf = await root.issueLeaf({ uris: ["https://example.com/x"] });
    err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_NO_SPIFFE_SAN);
    expect(err.message).toContain(
      'URI SAN is not a SPIFFE ID: SPIFFE ID "https://example.com/x" has scheme "https"',
    );

    leaf = await root.issueLeaf({ uris: [ID.toString(), testIdentity("x", "y").toString()] });
    err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_NO_SPIFFE_SAN);
    expect(err.message).toContain("has 2 URI SANs");
  });

  it("a SPIFFE ID smuggled inside another SAN (CVE-2021-44532 style)", async () => {
    const leaf = await root.issueLeaf({ uris: [], dnsNames: [`evil, URI:${ID}`] });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem]));
    expect(err.code).toBe(ErrorCode.CERT_NO_SPIFFE_SAN);
    expect(err.message).toContain("has no URI SAN");
  });

  it("a leaf in another trust domain", async () => {
    const foreign = testIdentity("default", "sleep", "other.example");
    const leaf = await root.issueLeaf({ identity: foreign });
    const err = refusal(() => verifyWorkloadChain(leaf.certChainPem, [root.certPem], { trustDomain: TD }));
    expect(err.code).toBe(ErrorCode.CERT_WRONG_TRUST_DOMAIN);
    expect(err.message).toContain('is in trust domain "other.example"; expected "cluster.local"');
    // Without a required trust domain the identity is returned as is.
    expect(verifyWorkloadChain(leaf.certChainPem, [root.certPem]).identity.equals(foreign)).toBe(true);
  });

  it("anything when no roots are configured", async () => {
    const leaf = await root.issueLeaf();
    expect(refusal(() => verifyWorkloadChain(leaf.certChainPem, [])).code).toBe(ErrorCode.CERT_WRONG_ISSUER);
  });
});

describe("describeCertificate", () => {
  it("reports identity, serial, validity and names", async () => {
    const leaf = await root.issueLeaf({ identity: ID });
    const d = describeCertificate(leaf.certChainPem[0]!);
    expect(d).toMatchObject({
      identity: ID.toString(),
      serial: leaf.serial,
      issuer: "O=cluster.local",
      subject: "(empty)",
    });
    expect(d.notAfter.getTime()).toBeGreaterThan(d.notBefore.getTime());
    expect(describeCertificate(root.certPem)).toMatchObject({ subject: "O=cluster.local" });
    expect(describeCertificate(root.certPem).identity).toBeUndefined();
  });
});
