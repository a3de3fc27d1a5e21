// Opaque TCP through a waypoint on 127.43.x.y, and DestinationRule connectionPool.tcp enforced on
// it: istio_tcp_* metrics and ztunnel's access-log fields with reporter="waypoint", maxConnections
// (a closed connection gives its slot back), idleTimeout, maxConnectionDuration, connectTimeout
// (also for HTTP: 503 UF) and tcpKeepalive on the sockets the waypoint opens.

import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, metricValue, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks, socksConnect } from "../utils/socks.js";

const CLIENT = "127.43.1.10";
const WAYPOINT = "127.43.2.40";
// A pod on a node no ztunnel serves: what answers on its 15008 is this test's silent listener.
const BLACKHOLE = "127.43.3.10";
const host = (name: string) => `${name}.demo.svc.cluster.local`;

/** One echo pod and its service per case, so counts and limits never mix. */
function app(name: string, ip: string, opts: { outsideMesh?: boolean } = {}): string {
  return docs(
    pod({
      name,
      namespace: "demo",
      node: "node-b",
      ip,
      sa: name,
      labels: { app: name, ...(opts.outsideMesh ? { "istio.io/dataplane-mode": "none" } : {}) },
      ports: [{ containerPort: 8080 }],
    }),
    service({
      name,
      namespace: "demo",
      vip: ip.replace("127.43.2.", "127.43.100."),
      selector: { app: name },
      ports: [{ port: 80, targetPort: 8080, name: "tcp" }],
    }),
  );
}

function rule(name: string, tcp: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: demo }
spec:
  host: ${name}
  trafficPolicy:
    connectionPool:
      tcp: ${tcp}
`;
}

let t: TestMesh;
let blackhole: Server;
const held: Socket[] = [];

beforeAll(async () => {
  // Accepts and never speaks: an HBONE connect to it hangs in the TLS handshake.
  blackhole = createServer((s) => {
    held.push(s);
    s.on("error", () => {});
  });
  blackhole.listen(15008, BLACKHOLE);
  await once(blackhole, "listening");
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.43.1.1"),
      node("node-b", "127.43.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      app("metered", "127.43.2.10"),
      app("limited", "127.43.2.11"),
      app("idle", "127.43.2.12"),
      app("aged", "127.43.2.13"),
      app("outside", "127.43.2.14", { outsideMesh: true }),
      pod({
        name: "slow",
        namespace: "demo",
        node: "node-c",
        ip: BLACKHOLE,
        sa: "slow",
        labels: { app: "slow" },
      }),
      service({
        name: "slow",
        namespace: "demo",
        vip: "127.43.100.30",
        selector: { app: "slow" },
        ports: [{ port: 80, targetPort: 8080, name: "http" }],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: ${WAYPOINT} }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
    "20-rules.yaml": docs(
      // http1MaxPendingRequests too: a leaked slot would otherwise hide in the pending queue.
      rule("limited", "{ maxConnections: 1 }").replace(
        "      tcp: { maxConnections: 1 }",
        "      tcp: { maxConnections: 1 }\n      http: { http1MaxPendingRequests: 1 }",
      ),
      rule("idle", "{ idleTimeout: 300ms }"),
      rule("aged", "{ maxConnectionDuration: 400ms }"),
      rule("slow", "{ connectTimeout: 250ms }"),
      rule("outside", "{ tcpKeepalive: { time: 7s, interval: 3s, probes: 4 } }"),
    ),
  });
  await eventually(async () => {
    const dump = (await (await fetch(`http://${WAYPOINT}:15000/config_dump`)).json()) as {
      l7: { resources: { kind: string }[] };
    };
    expect(dump.l7.resources.filter((r) => r.kind === "DestinationRule")).toHaveLength(5);
  }, 10_000);
}, 30_000);

afterAll(async () => {
  for (const s of held) s.destroy();
  blackhole?.close();
  await t?.stop();
});

/** An opaque TCP connection (it speaks first, and not HTTP) to `name`'s port 80. */
async function open(name: string): Promise<{ socket: Socket; got: () => string; closed: Promise<void> }> {
  const socket = await socksConnect(
    { host: CLIENT, port: 15080 },
    { host: host(name), port: 80 },
    { localAddress: CLIENT },
  );
  socket.on("error", () => {});
  socket.resume();
  let got = "";
  socket.on("data", (c: Buffer) => {
    got += c.toString("latin1");
  });
  // The waypoint closing the connection reaches the client as a FIN ('end') or a reset ('close').
  const closed = new Promise<void>((r) => {
    socket.once("end", () => r());
    socket.once("close", () => r());
  });
  return { socket, got: () => got, closed };
}

async function echo(name: string, text: string) {
  const c = await open(name);
  c.socket.write(text);
  await eventually(() => expect(c.got()).toBe(text));
  return c;
}

/** The waypoint's own log lines (its logger carries `waypoint: demo/waypoint`). */
const waypointLogs = (fields: Record<string, unknown>) =>
  logsWith(t.logs, { waypoint: "demo/waypoint", component: "access", ...fields });

describe("opaque TCP through the waypoint", () => {
  it("is counted in istio_tcp_* with reporter=waypoint and logged with ztunnel's fields", async () => {
    const c = await echo("metered", "hello\n");
    c.socket.end();
    await c.closed;
    const labels = {
      reporter: "waypoint",
      source_workload: "client",
      source_principal: "spiffe://cluster.local/ns/demo/sa/client",
      destination_service: host("metered"),
      destination_workload: "metered",
      destination_principal: "spiffe://cluster.local/ns/demo/sa/metered",
      request_protocol: "tcp",
      connection_security_policy: "mutual_tls",
    };
    await eventually(async () => {
      const text = await (await fetch(`http://${WAYPOINT}:15020/metrics`)).text();
      expect(metricValue(text, "istio_tcp_connections_opened_total", labels)).toBe(1);
      expect(
        metricValue(text, "istio_tcp_connections_closed_total", { ...labels, response_flags: "-" }),
      ).toBe(1);
      expect(metricValue(text, "istio_tcp_received_bytes_total", labels)).toBe(6);
      expect(metricValue(text, "istio_tcp_sent_bytes_total", labels)).toBe(6);
    });
    const [line] = waypointLogs({ "dst.service": host("metered"), msg: "connection complete" });
    expect(line).toMatchObject({
      direction: "inbound",
      "src.identity": "spiffe://cluster.local/ns/demo/sa/client",
      "src.workload": "client",
      "dst.addr": "127.43.100.10:80",
      "dst.hbone_addr": "127.43.2.10:15008",
      "dst.workload": "metered",
      "dst.identity": "spiffe://cluster.local/ns/demo/sa/metered",
      bytes_sent: 6,
      bytes_recv: 6,
    });
  });

  it("maxConnections 1: a second connection overflows (UO) while one is open, and gets the slot once it closed", async () => {
    for (let round = 0; round < 3; round++) {
      const first = await echo("limited", `round ${round}\n`);
      const second = await open("limited");
      second.socket.write("overflow?\n");
      await second.closed;
      expect(second.got()).toBe("");
      first.socket.end();
      await first.closed;
      // The slot is back only after the waypoint saw the close; the next round waits for it.
      await eventually(async () => {
        const dump = (await (await fetch(`http://${WAYPOINT}:15000/config_dump`)).json()) as {
          l7: { clusters: { breakers: { cluster: string; active: { connections: number } }[] } };
        };
        const breaker = dump.l7.clusters.breakers.find(
          (b) => b.cluster === `outbound|80||${host("limited")}`,
        );
        expect(breaker?.active.connections).toBe(0);
      });
    }
    expect(waypointLogs({ "dst.addr": "127.43.100.11:80", response_flags: "UO" })).toHaveLength(3);
  });
});

describe("DestinationRule connectionPool.tcp", () => {
  it("idleTimeout closes an opaque connection that carried nothing for that long (SI)", async () => {
    const c = await echo("idle", "ping\n");
    await c.closed;
    await eventually(() =>
      expect(waypointLogs({ "dst.addr": "127.43.100.12:80", response_flags: "SI" })).toHaveLength(1),
    );
  });

  it("idleTimeout also closes the waypoint's pooled HTTP connections", async () => {
    // node-b's ztunnel logs each connection from the waypoint to the app when it closes.
    const closedToApp = () =>
      logsWith(t.logs, { process: "ztunnel", direction: "inbound", "dst.addr": "127.43.2.12:8080" }).length;
    const before = closedToApp();
    expect((await httpViaSocks(CLIENT, { host: host("idle"), port: 80, path: "/pooled" })).status).toBe(200);
    await eventually(() => expect(closedToApp()).toBe(before + 1), 5_000);
  });

  it("maxConnectionDuration closes an opaque connection at that age (DT)", async () => {
    const c = await echo("aged", "ping\n");
    await c.closed;
    await eventually(() =>
      expect(waypointLogs({ "dst.addr": "127.43.100.13:80", response_flags: "DT" })).toHaveLength(1),
    );
  });

  it("maxConnectionDuration retires pooled HTTP connections: requests move to a new one", async () => {
    const peers = new Set<string>();
    await eventually(async () => {
      const res = await httpViaSocks(CLIENT, { host: host("aged"), port: 80, path: "/age" });
      peers.add(res.json<{ peer: string }>().peer);
      expect(peers.size).toBeGreaterThan(1);
    }, 10_000);
  });

  it("connectTimeout bounds the upstream connect, HBONE handshake included: 503 UF for HTTP, UF for TCP", async () => {
    const res = await httpViaSocks(CLIENT, { host: host("slow"), port: 80, path: "/" });
    expect(res.status).toBe(503);
    expect(res.body).toContain("timed out after 250 ms");
    const c = await open("slow");
    c.socket.write("hello\n");
    await c.closed;
    await eventually(() => {
      const [line] = waypointLogs({ "dst.addr": "127.43.100.30:80", response_flags: "UF" });
      expect(line?.["error"]).toContain("timed out after 250 ms");
    });
  });

  it("tcpKeepalive is set on the TCP socket the waypoint opens to an endpoint outside the mesh", async () => {
    const c = await echo("outside", "ping\n");
    // The waypoint's socket to the app: keepalive armed with the rule's 7 s, not the kernel's 2 h.
    const ss = execFileSync("ss", ["-tno", "state", "established", "dst", "127.43.2.14:8080"]).toString();
    const seconds = Number(/timer:\(keepalive,([\d.]+)(ms|sec)/.exec(ss)?.[1]);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(7);
    c.socket.end();
    await c.closed;
  });
});
