// Security properties of the local mesh on 127.22.x.y: only TLS crosses between ztunnels; a server
// with the wrong identity, an expired certificate or another CA's certificate is refused; STRICT
// refuses plaintext and PERMISSIVE accepts it; a policy change closes a connection it no longer allows.

import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import {
  createHboneServer,
  createLogger,
  type HboneServer,
  respondStatus,
  SpiffeId,
  type WorkloadCertificate,
} from "@ambient/core";
import { createTestRoot, type TestCa } from "@ambient/core/testing";
import { LocalSocketFactory } from "@ambient/ztunnel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpGetViaSocks, SocksError, socksConnect } from "../utils/socks.js";

const CLIENT = "127.22.1.10";
const WEB = "127.22.2.10";
const LEGACY = "127.22.1.30";
const ROGUE = "127.22.3.10";

// Every HBONE connection node-a's ztunnel opens goes through this relay, which keeps the bytes.
const captured: Buffer[] = [];
let relay: Server;
let relayPort = 0;

const POLICY_FILE = "30-policy.yaml";
const PEER_AUTH_FILE = "20-peer-auth.yaml";

let t: TestMesh;
/** The mesh root, planted in the control plane's state so tests can issue leaves with any validity. */
let meshCa: TestCa;
beforeAll(async () => {
  meshCa = await createTestRoot({ trustDomain: "cluster.local" });
  relay = createServer((inbound) => {
    let target: Socket | undefined;
    inbound.once("data", (first: Buffer) => {
      // The first line is a tiny header the factory sends: "host port source\n". Dialling from the
      // source pod's address keeps what the destination's policy sees unchanged.
      const text = first.toString("latin1");
      const nl = text.indexOf("\n");
      const [host, port, source] = text.slice(0, nl).split(" ");
      target = connect({ host: host!, port: Number(port), localAddress: source! });
      const rest = first.subarray(nl + 1);
      if (rest.length) {
        captured.push(rest);
        target.write(rest);
      }
      inbound.on("data", (c: Buffer) => {
        captured.push(c);
        target!.write(c);
      });
      target.on("data", (c: Buffer) => {
        captured.push(c);
        inbound.write(c);
      });
      target.on("close", () => inbound.destroy());
      target.on("error", () => inbound.destroy());
    });
    inbound.on("close", () => target?.destroy());
    inbound.on("error", () => target?.destroy());
  });
  relay.listen(0, "127.0.0.1");
  await once(relay, "listening");
  relayPort = (relay.address() as { port: number }).port;

  t = await startMesh(
    {
      "00-mesh.yaml": docs(
        namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
        namespace("legacy"),
        node("node-a", "127.22.1.1"),
        node("node-b", "127.22.2.1"),
        pod({
          name: "client",
          namespace: "demo",
          node: "node-a",
          ip: CLIENT,
          sa: "client",
          labels: { app: "client" },
        }),
        pod({
          name: "client2",
          namespace: "demo",
          node: "node-a",
          ip: "127.22.1.11",
          sa: "client2",
          labels: { app: "client2" },
        }),
        pod({ name: "legacy", namespace: "legacy", node: "node-a", ip: LEGACY, labels: { app: "legacy" } }),
        pod({
          name: "web",
          namespace: "demo",
          node: "node-b",
          ip: WEB,
          sa: "web",
          labels: { app: "web" },
          ports: [
            { name: "http", containerPort: 8080 },
            { name: "other", containerPort: 9090 },
          ],
        }),
        // Scheduled on a node that has no ztunnel: the test serves its 15008 itself.
        pod({
          name: "rogue",
          namespace: "demo",
          node: "node-x",
          ip: ROGUE,
          sa: "rogue",
          labels: { app: "rogue" },
        }),
        service({
          name: "web",
          namespace: "demo",
          vip: "127.22.100.1",
          selector: { app: "web" },
          ports: [{ port: 80, targetPort: 8080, name: "http" }],
        }),
      ),
    },
    {
      prepareState: (stateDir) => meshCa.writePluggedFolder(join(stateDir, "controlplane", "ca")),
      ztunnelDeps: (nodeName, nodeIp) => {
        if (nodeName !== "node-a") return {};
        const local = new LocalSocketFactory(nodeIp);
        return {
          sockets: {
            listen: (s, p, port) => local.listen(s, p, port),
            originalDestination: () => undefined,
            release: () => {},
            connectToApp: (p, target) => local.connectToApp(p, target),
            connect: (p, target) => {
              if (target.port !== 15008 || target.host === ROGUE) return local.connect(p, target);
              const s = connect({ host: "127.0.0.1", port: relayPort, allowHalfOpen: true });
              s.write(`${target.host} ${target.port} ${p?.ip ?? nodeIp}\n`);
              return s;
            },
          },
        };
      },
    },
  );
}, 30_000);

afterAll(async () => {
  await t?.stop();
  relay?.close();
});

async function rogueServer(cert: WorkloadCertificate, roots: string[]): Promise<HboneServer> {
  const server = createHboneServer({
    certificate: () => cert,
    rootsPem: () => roots,
    trustDomain: "cluster.local",
    logger: createLogger({ level: "silent" }),
    onStream: (stream) => respondStatus(stream, 200),
  });
  server.server.listen(15008, ROGUE);
  await once(server.server, "listening");
  return server;
}

async function refusedWith(pattern: RegExp): Promise<void> {
  await expect(
    socksConnect({ host: CLIENT, port: 15080 }, { host: ROGUE, port: 8080 }, { localAddress: CLIENT }),
  ).rejects.toBeInstanceOf(SocksError);
  await eventually(() => {
    const failures = logsWith(t.logs, { direction: "outbound", "dst.workload": "rogue" }).filter((l) =>
      pattern.test(String(l["error"])),
    );
    // An untrusted server is an upstream connect failure (UF), logged once, as a warning.
    expect(failures.at(-1)).toMatchObject({
      response_flags: "UF",
      level: "warn",
      msg: "outbound connection failed",
    });
  });
}

describe("what crosses between ztunnels", () => {
  it("is TLS only: the request's plaintext never appears on the wire", async () => {
    captured.length = 0;
    const res = await httpGetViaSocks(CLIENT, "web.demo.svc.cluster.local", 80, "/secret-marker-4711");
    expect(res.status).toBe(200);
    const wire = Buffer.concat(captured);
    expect(wire.length).toBeGreaterThan(500);
    expect(wire[0]).toBe(0x16); // TLS handshake record
    expect(wire.includes("secret-marker-4711")).toBe(false);
    expect(wire.includes("GET /")).toBe(false);
    expect(wire.includes("CONNECT")).toBe(false);
  });
});

describe("server identity checks", () => {
  it("refuses a server whose SPIFFE ID is not the destination's", async () => {
    const ca = t.mesh.cp.ca;
    const cert = await ca.issueWorkloadCertificate(
      SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/someone-else"),
    );
    const server = await rogueServer(cert, ca.rootCertsPem);
    try {
      await refusedWith(/someone-else.*rogue|rogue.*someone-else/);
    } finally {
      server.destroy();
    }
  });

  it("refuses an expired server certificate", async () => {
    const leaf = await meshCa.issueLeaf({
      identity: SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/rogue"),
      notBefore: new Date(Date.now() - 2 * 24 * 3600_000),
      notAfter: new Date(Date.now() - 24 * 3600_000),
    });
    const cert: WorkloadCertificate = {
      ...leaf,
      identity: SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/rogue"),
      notAfter: new Date(Date.now() - 24 * 3600_000),
    };
    const server = await rogueServer(cert, t.mesh.cp.ca.rootCertsPem);
    try {
      await refusedWith(/expired/);
    } finally {
      server.destroy();
    }
  });

  it("refuses a server certificate from another CA", async () => {
    const other = await (await createTestRoot({ trustDomain: "cluster.local" })).toAuthority();
    const cert = await other.issueWorkloadCertificate(
      SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/rogue"),
    );
    const server = await rogueServer(cert, other.rootCertsPem);
    try {
      await refusedWith(/root|issuer|not signed|trust/i);
    } finally {
      server.destroy();
    }
  });
});

function plaintext(from: string, to: string): Promise<"refused" | number> {
  return new Promise((resolve) => {
    const s = connect({ host: to, port: 15006, localAddress: from });
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("connect", () => s.write(`GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    s.once("error", () => resolve("refused"));
    s.once("close", () => {
      const text = Buffer.concat(chunks).toString();
      resolve(text.startsWith("HTTP/1.1") ? Number(text.split(" ")[1]) : "refused");
    });
  });
}

describe("PeerAuthentication", () => {
  it("STRICT refuses plaintext; PERMISSIVE accepts it", async () => {
    await t.config.write(PEER_AUTH_FILE, peerAuth("STRICT"));
    await eventually(async () => expect(await plaintext(LEGACY, WEB)).toBe("refused"));
    // The first refusal may have been an accepted connection closed by the policy change (logged
    // as "connection closed"); one more attempt now meets STRICT at accept.
    expect(await plaintext(LEGACY, WEB)).toBe("refused");
    // The refusal is a policy denial in web's ztunnel's log: flag DENY, at info.
    await eventually(() =>
      expect(
        logsWith(t.logs, { direction: "inbound" })
          .filter((l) => String(l["src.addr"]).startsWith(`${LEGACY}:`))
          .at(-1),
      ).toMatchObject({ response_flags: "DENY", level: "info", msg: "inbound plaintext connection refused" }),
    );
    // mTLS still works under STRICT.
    expect((await httpGetViaSocks(CLIENT, WEB, 8080)).status).toBe(200);
    await t.config.write(PEER_AUTH_FILE, peerAuth("PERMISSIVE"));
    await eventually(async () => expect(await plaintext(LEGACY, WEB)).toBe(200));
    await t.config.remove(PEER_AUTH_FILE);
  });
});

describe("L4 AuthorizationPolicy in the mesh", () => {
  const cases: { name: string; rules: string; client: boolean; client2: boolean; port9090: boolean }[] = [
    {
      name: "principals",
      rules: `- from: [{ source: { principals: ["cluster.local/ns/demo/sa/client"] } }]`,
      client: true,
      client2: false,
      port9090: true,
    },
    {
      name: "notPrincipals",
      rules: `- from: [{ source: { notPrincipals: ["cluster.local/ns/demo/sa/client"] } }]`,
      client: false,
      client2: true,
      port9090: false,
    },
    {
      name: "namespaces",
      rules: `- from: [{ source: { namespaces: ["demo"] } }]`,
      client: true,
      client2: true,
      port9090: true,
    },
    {
      name: "ipBlocks",
      rules: `- from: [{ source: { ipBlocks: ["127.22.1.11/32"] } }]`,
      client: false,
      client2: true,
      port9090: false,
    },
    {
      name: "notIpBlocks",
      rules: `- from: [{ source: { notIpBlocks: ["127.22.1.11"] } }]`,
      client: true,
      client2: false,
      port9090: true,
    },
    {
      name: "ports",
      rules: `- to: [{ operation: { ports: ["8080"] } }]`,
      client: true,
      client2: true,
      port9090: false,
    },
    {
      name: "notPorts",
      rules: `- to: [{ operation: { notPorts: ["8080"] } }]`,
      client: false,
      client2: false,
      port9090: true,
    },
  ];
  for (const c of cases) {
    it(`ALLOW ${c.name}`, async () => {
      await t.config.write(POLICY_FILE, allowPolicy(c.rules));
      const canReach = async (from: string, port: number) => {
        try {
          return (await httpGetViaSocks(from, WEB, port)).status === 200;
        } catch (err) {
          if (err instanceof SocksError && err.reply === 2) return false;
          throw err;
        }
      };
      await eventually(async () => {
        expect(await canReach(CLIENT, 8080)).toBe(c.client);
        expect(await canReach("127.22.1.11", 8080)).toBe(c.client2);
        expect(await canReach(CLIENT, 9090)).toBe(c.port9090);
      });
    });
  }

  it("closes an open connection when a policy change no longer allows it", async () => {
    await t.config.remove(POLICY_FILE);
    const s = await eventually(() =>
      socksConnect({ host: CLIENT, port: 15080 }, { host: WEB, port: 9090 }, { localAddress: CLIENT }),
    );
    s.resume();
    s.write("ping\n");
    const [echo] = (await once(s, "data")) as [Buffer];
    expect(echo.toString()).toBe("ping\n");
    const closed = new Promise<unknown>((resolve) => {
      s.once("error", resolve);
      s.once("close", resolve);
    });
    await t.config.write(
      POLICY_FILE,
      allowPolicy(`- from: [{ source: { principals: ["cluster.local/ns/demo/sa/nobody"] } }]`),
    );
    // The client sees a reset, not a clean end of data.
    expect(await closed).toMatchObject({ code: "ECONNRESET" });
    await eventually(() =>
      expect(
        logsWith(t.logs, { direction: "inbound", "dst.workload": "web" }).find((l) =>
          /no longer allowed/.test(String(l["error"])),
        ),
      ).toMatchObject({ response_flags: "DENY" }),
    );
    await t.config.remove(POLICY_FILE);
  });
});

function peerAuth(mode: string): string {
  return `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: demo }\nspec:\n  mtls: { mode: ${mode} }\n`;
}

function allowPolicy(rules: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web, namespace: demo }
spec:
  selector: { matchLabels: { app: web } }
  action: ALLOW
  rules:
${rules
  .split("\n")
  .map((l) => `    ${l}`)
  .join("\n")}
`;
}
