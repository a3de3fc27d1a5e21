// ztunnel and the waypoint configured as in a pod (Istio's env: POD_NAME, XDS_ADDRESS on 15012,
// CA_ROOT_CERT, the token file) against a TLS Delta ADS + CA server: xDS and certificates over TLS
// with the bearer token; a server certificate with the wrong name or from another root refused with
// the reason in readiness; a rotated token used on the next call; a rotated root picked up on the
// next reconnect. Loopback range 127.112.x.

import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLogger, SpiffeId } from "@ambient/core";
import { createTestRoot, type TestCa } from "@ambient/core/testing";
import { parseWaypointConfig, Waypoint } from "@ambient/waypoint";
import { parseZtunnelConfig, Ztunnel } from "@ambient/ztunnel";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  startControlPlane,
  type TempDir,
  tempDir,
} from "../utils/index.js";
import { startTlsControlPlane, type TlsControlPlane } from "../utils/tls-control-plane.js";

const logger = createLogger({ level: "silent" });
const CP_ADDRESS = "127.112.0.2:15012";
const SAN = "istiod.istio-system.svc";
const SLEEP = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/sleep");
const MESH = {
  "00-cluster.yaml": docs(
    namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
    node("node-1", "127.112.1.1"),
  ),
  "10-pods.yaml": pod({ name: "sleep", namespace: "demo", node: "node-1", ip: "127.112.1.10", sa: "sleep" }),
};

let dir: TempDir;
let translator: RunningControlPlane;
let root: TestCa;
let servers: TlsControlPlane[] = [];
let proxies: { stop(): Promise<void> }[] = [];

beforeEach(async () => {
  dir = await tempDir("ambient-k8s-proxy-");
  // The real control plane translates the folder; its store is what the TLS server serves.
  translator = await startControlPlane(MESH, { watch: false });
  root = await createTestRoot();
  await dir.write("root-cert.pem", root.rootCertPem);
  await dir.write("istio-token", "token-1\n");
});

afterEach(async () => {
  for (const p of proxies) await p.stop();
  for (const s of servers) await s.stop();
  proxies = [];
  servers = [];
  await translator.stop();
  await dir.cleanup();
});

async function serve(
  opts: { servingRoot?: TestCa; dnsNames?: string[]; acceptToken?: (t?: string) => boolean } = {},
) {
  const s = await startTlsControlPlane({
    address: CP_ADDRESS,
    servingRoot: opts.servingRoot ?? root,
    ...(opts.dnsNames && { dnsNames: opts.dnsNames }),
    store: translator.cp.store,
    authority: await root.toAuthority(),
    ...(opts.acceptToken && { acceptToken: opts.acceptToken }),
    logger,
  });
  servers.push(s);
  return s;
}

/** The env Istio's ztunnel chart gives the pod, with the mounted files in the test's folder. */
function podEnv(extra: Record<string, string> = {}) {
  return {
    NODE_NAME: "node-1",
    POD_NAME: "ztunnel-x7k2p",
    POD_NAMESPACE: "istio-system",
    INSTANCE_IP: "127.112.1.1",
    SERVICE_ACCOUNT: "ztunnel",
    XDS_ADDRESS: CP_ADDRESS,
    CA_ADDRESS: CP_ADDRESS,
    CA_ROOT_CERT: join(dir.path, "root-cert.pem"),
    AMBIENT_NODE_TOKEN_FILE: join(dir.path, "istio-token"),
    // The server is reached by IP; its certificate names istiod's Service.
    CONTROL_PLANE_SAN: SAN,
    ...extra,
  };
}

async function startZtunnel(env = podEnv()) {
  const z = await Ztunnel.start(parseZtunnelConfig(["--admin-on-node-ip"], env), { logger });
  proxies.push(z);
  return z;
}

/** As the kubelet updates a projected volume: the new content appears at once, by rename. */
async function rotate(file: string, text: string) {
  await writeFile(join(dir.path, `.${file}.new`), text);
  await rename(join(dir.path, `.${file}.new`), join(dir.path, file));
}

describe("ztunnel in a pod: the control plane over TLS", () => {
  it("gets xDS and certificates over TLS, sending the token and impersonating the pod", async () => {
    const cp = await serve();
    const z = await startZtunnel();
    await eventually(() => expect(z.readiness()).toEqual({ ready: true, reasons: [] }), 10_000);
    expect(z.certs.get(SLEEP)).toBeDefined();
    expect(cp.xdsTokens).toEqual(["token-1"]);
    expect(cp.caCalls).toEqual([
      { token: "token-1", impersonated: SLEEP.toString(), issued: expect.any(String) },
    ]);
    expect(z.configDump()).toMatchObject({
      xds: { tls: true, san: SAN, rootCert: join(dir.path, "root-cert.pem"), synced: true },
    });
  });

  it("refuses a server certificate that does not name the control plane, and says so in readiness", async () => {
    const cp = await serve({ dnsNames: ["not-istiod.example"] });
    const z = await startZtunnel();
    await eventually(() => {
      const { ready, reasons } = z.readiness();
      expect(ready).toBe(false);
      expect(reasons.join("\n")).toMatch(
        /xDS not synced with 127\.112\.0\.2:15012 \(TLS: its certificate must name istiod\.istio-system\.svc and chain to .*root-cert\.pem\): .*altnames/,
      );
    }, 10_000);
    // Refused in the handshake: no stream reached the server, no pod is known.
    expect(cp.xdsTokens).toEqual([]);
    expect(z.state.snapshot().workloads).toEqual([]);
  });

  it("refuses a server certificate from another root", async () => {
    const cp = await serve({ servingRoot: await createTestRoot() });
    const z = await startZtunnel();
    await eventually(() => {
      const { ready, reasons } = z.readiness();
      expect(ready).toBe(false);
      expect(reasons.join("\n")).toMatch(
        /xDS not synced with 127\.112\.0\.2:15012 \(TLS.*\): .*self-signed certificate in certificate chain/,
      );
    }, 10_000);
    expect(cp.xdsTokens).toEqual([]);
  });

  it("uses a rotated token on the next xDS reconnect and the next CA call", async () => {
    const cp = await serve({ acceptToken: (t) => t === "token-2" });
    const z = await startZtunnel();
    await eventually(() => {
      expect(z.readiness().reasons.join("\n")).toMatch(/UNAUTHENTICATED.*token token-1 is not accepted/);
    }, 10_000);
    await rotate("istio-token", "token-2\n");
    await eventually(() => expect(z.readiness().ready).toBe(true), 15_000);
    expect(cp.xdsTokens.at(-1)).toBe("token-2");
    expect(cp.caCalls.map((c) => c.token)).toEqual(["token-2"]);
  });

  it("picks up a rotated root: the next reconnect and CA call use a new channel", async () => {
    const first = await serve();
    const z = await startZtunnel();
    await eventually(() => expect(z.readiness().ready).toBe(true), 10_000);

    // The mesh root rotates: the control plane now serves a certificate from the new root, and
    // the ConfigMap's file follows. The old channel (old root) would refuse it forever.
    await first.stop();
    const newRoot = await createTestRoot();
    const second = await serve({ servingRoot: newRoot });
    await rotate("root-cert.pem", newRoot.rootCertPem);
    await eventually(() => expect(second.xdsTokens.length).toBeGreaterThan(0), 15_000);

    // A new pod on the node: its certificate comes over the new channel.
    await translator.config.write(
      "20-more.yaml",
      pod({ name: "late", namespace: "demo", node: "node-1", ip: "127.112.1.11", sa: "late" }),
    );
    await translator.cp.reload();
    const late = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/late");
    await eventually(() => expect(z.certs.get(late)).toBeDefined(), 15_000);
    expect(second.caCalls.map((c) => c.impersonated)).toContain(late.toString());
  });

  it("names the missing token file in readiness", async () => {
    await serve();
    const z = await startZtunnel(podEnv({ AMBIENT_NODE_TOKEN_FILE: join(dir.path, "no-such-token") }));
    await eventually(() => {
      expect(z.readiness().reasons.join("\n")).toContain(
        `cannot read the token file ${join(dir.path, "no-such-token")}`,
      );
    }, 10_000);
  });
});

describe("the waypoint in a pod", () => {
  it("asks the CA for its own identity, without impersonation, over TLS with its token", async () => {
    const cp = await serve();
    const w = await Waypoint.start(
      parseWaypointConfig(["--admin-port", "0"], {
        ...podEnv(),
        GATEWAY_NAME: "waypoint",
        POD_NAME: "waypoint-5d8f9",
        POD_NAMESPACE: "demo",
        INSTANCE_IP: "127.112.2.1",
        SERVICE_ACCOUNT: "waypoint",
      }),
      { logger },
    );
    proxies.push(w);
    const identity = SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/waypoint");
    await eventually(() => expect(w.certs.get(identity)).toBeDefined(), 10_000);
    await eventually(() => expect(w.readiness().ready).toBe(true), 10_000);
    expect(cp.caCalls).toEqual([{ token: "token-1", impersonated: undefined, issued: expect.any(String) }]);
    expect(cp.xdsTokens).toEqual(["token-1"]);
  });
});
