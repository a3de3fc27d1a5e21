import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EnvSource, findCode, parseOptions } from "@ambient/core";
import { createTestRoot } from "@ambient/core/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ControlPlaneChannel } from "./channel.js";
import { CONTROL_PLANE_OPTIONS, controlPlaneConfig } from "./options.js";

const parse = (env: EnvSource, argv: string[] = []) =>
  controlPlaneConfig(parseOptions(CONTROL_PLANE_OPTIONS, argv, env).values, env.POD_NAME !== undefined);

describe("controlPlaneConfig", () => {
  it("local mode: plaintext on loopback, no token unless given", () => {
    expect(parse({})).toEqual({
      xdsAddress: "127.0.0.1:15010",
      caAddress: "127.0.0.1:15010",
      tokenFile: undefined,
      rootCertFile: undefined,
      san: undefined,
      tls: false,
    });
  });

  it("in a pod: istiod's TLS port, the projected token and the root ConfigMap's file", () => {
    expect(parse({ POD_NAME: "ztunnel-abc" })).toEqual({
      xdsAddress: "istiod.istio-system.svc:15012",
      caAddress: "istiod.istio-system.svc:15012",
      tokenFile: "/var/run/secrets/tokens/istio-token",
      rootCertFile: "/var/run/secrets/istio/root-cert.pem",
      san: undefined,
      tls: true,
    });
  });

  it("a root certificate turns TLS on for any port; CA_ADDRESS may differ", () => {
    const c = parse({ XDS_ADDRESS: "10.0.0.1:9000", CA_ADDRESS: "10.0.0.2:9001", CA_ROOT_CERT: "/r.pem" });
    expect(c).toMatchObject({ tls: true, xdsAddress: "10.0.0.1:9000", caAddress: "10.0.0.2:9001" });
  });

  it("refuses 15012 without a root, a SAN without TLS and bad addresses, all at once", () => {
    let err: unknown;
    try {
      parse({ XDS_ADDRESS: "istiod:15012", CA_ADDRESS: "nope", CONTROL_PLANE_SAN: "istiod" });
    } catch (e) {
      err = e;
    }
    expect(findCode(err)).toBe("AMB_CONFIG_INVALID");
    const message = (err as Error).message;
    expect(message).toContain('--ca-address: "nope" is not HOST:PORT');
    expect(message).toContain("port 15012 is the control plane's TLS port: give --ca-root-cert");
    expect(() => parse({ CONTROL_PLANE_SAN: "istiod" })).toThrow(/--control-plane-san applies to TLS only/);
  });
});

describe("ControlPlaneChannel files", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ambient-cp-channel-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const channel = (files: { token?: string; root?: string }) =>
    new ControlPlaneChannel({
      xdsAddress: "istiod.istio-system.svc:15012",
      caAddress: "istiod.istio-system.svc:15012",
      tokenFile: files.token,
      rootCertFile: files.root,
      san: undefined,
      tls: files.root !== undefined,
    });

  it("names a missing or empty token file", async () => {
    const missing = join(dir, "istio-token");
    await expect(channel({ token: missing }).token()).rejects.toMatchObject({
      code: "AMB_TOKEN_UNREADABLE",
      details: { path: missing },
      message: expect.stringContaining(`cannot read the token file ${missing}`),
    });
    writeFileSync(missing, " \n");
    await expect(channel({ token: missing }).token()).rejects.toThrow(`the token file ${missing} is empty`);
    writeFileSync(missing, "abc\n");
    await expect(channel({ token: missing }).token()).resolves.toBe("abc");
    await expect(channel({}).token()).resolves.toBeUndefined();
  });

  it("names a missing root file or one without a certificate", async () => {
    const root = join(dir, "root-cert.pem");
    const source = channel({ root }).credentials as () => Promise<unknown>;
    await expect(source()).rejects.toMatchObject({
      code: "AMB_ROOT_CERT_UNREADABLE",
      details: { path: root },
    });
    writeFileSync(root, "not a certificate\n");
    await expect(source()).rejects.toThrow(
      `the control plane root certificate ${root} holds no PEM certificate`,
    );
  });

  it("keeps its credentials while the root is unchanged and makes new ones when it rotates", async () => {
    const root = join(dir, "root-cert.pem");
    writeFileSync(root, (await createTestRoot()).rootCertPem);
    const c = channel({ root });
    const source = c.credentials as () => Promise<unknown>;
    const first = await source();
    expect(await source()).toBe(first);
    writeFileSync(root, (await createTestRoot()).rootCertPem);
    expect(await source()).not.toBe(first);
    expect(channel({}).credentials).toBeUndefined();
  });
});
