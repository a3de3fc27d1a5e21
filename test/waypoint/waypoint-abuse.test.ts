// The waypoint's 15008 against a raw HTTP/2 client with a valid workload certificate, on 127.42.x.y:
// it tunnels only to the services (and workloads) bound to it, never to its own ports, the node or
// loopback; a rapid-reset flood and streams past the limit are handled as on ztunnel's 15008.

import { SpiffeId, type WorkloadCertificate } from "@ambient/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, FrameType, RawH2 } from "../utils/h2-raw.js";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpGetViaSocks } from "../utils/socks.js";

const CLIENT = "127.42.1.10";
const NODE_B = "127.42.2.1";
const WAYPOINT = "127.42.2.40";
const WEB_VIP = "127.42.100.1";
const DB = "127.42.2.20";
const DB_VIP = "127.42.100.2";

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: demo
  labels: { istio.io/waypoint-for: service }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: ${WAYPOINT} }]
  listeners:
    - { name: mesh, port: 15008, protocol: HBONE }
`;

let t: TestMesh;
let clientCert: WorkloadCertificate;
beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      // In the mesh, but its services use no waypoint: this waypoint has no business tunnelling there.
      namespace("other", { "istio.io/dataplane-mode": "ambient" }),
      node("node-a", "127.42.1.1"),
      node("node-b", NODE_B),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({
        name: "web",
        namespace: "demo",
        node: "node-b",
        ip: "127.42.2.10",
        sa: "web",
        labels: { app: "web" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      pod({
        name: "db",
        namespace: "other",
        node: "node-b",
        ip: DB,
        sa: "db",
        labels: { app: "db" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      service({
        name: "web",
        namespace: "demo",
        vip: WEB_VIP,
        selector: { app: "web" },
        ports: [{ port: 80, targetPort: "http", name: "http" }],
      }),
      service({
        name: "db",
        namespace: "other",
        vip: DB_VIP,
        selector: { app: "db" },
        ports: [{ port: 80, targetPort: "http", name: "http" }],
      }),
    ),
    "10-waypoint.yaml": GATEWAY,
  });
  clientCert = await t.mesh.cp.ca.issueWorkloadCertificate(
    SpiffeId.parse("spiffe://cluster.local/ns/demo/sa/client"),
  );
}, 30_000);
afterAll(async () => t?.stop());

function raw(): Promise<RawH2> {
  return RawH2.connect({
    host: WAYPOINT,
    port: 15008,
    localAddress: CLIENT,
    certificate: clientCert,
    rootsPem: t.mesh.cp.ca.rootCertsPem,
    serverIdentity: "spiffe://cluster.local/ns/demo/sa/waypoint",
  });
}

async function stillServes(): Promise<void> {
  const res = await httpGetViaSocks(CLIENT, "web.demo.svc.cluster.local", 80, "/still-served");
  expect(res.status).toBe(200);
}

describe("the waypoint's 15008 is never an open proxy", () => {
  it("tunnels to a service bound to it", async () => {
    const h = await raw();
    try {
      expect(await h.connect(1, `${WEB_VIP}:80`)).toEqual({ status: 200 });
      h.data(
        1,
        Buffer.from("GET /through HTTP/1.1\r\nHost: web.demo.svc.cluster.local\r\nConnection: close\r\n\r\n"),
      );
      await eventually(() => expect(h.received(1).toString()).toMatch(/^HTTP\/1\.1 200/));
    } finally {
      h.destroy();
    }
  });

  const refused: [string, string][] = [
    ["a service that does not use this waypoint", `${DB_VIP}:80`],
    ["a pod that does not use this waypoint", `${DB}:8080`],
    ["the waypoint's own admin port", `${WAYPOINT}:15000`],
    ["the waypoint's own metrics port", `${WAYPOINT}:15020`],
    ["the waypoint's own HBONE port", `${WAYPOINT}:15008`],
    ["the node", `${NODE_B}:15000`],
    ["127.0.0.1", "127.0.0.1:80"],
    ["IPv6 loopback", "[::1]:80"],
  ];
  for (const [name, authority] of refused) {
    it(`refuses ${name} (${authority}) with 503`, async () => {
      const h = await raw();
      try {
        const answer = await h.connect(1, authority);
        if (answer.status === 200) {
          // What an open proxy would let through: the waypoint's own admin, for one.
          h.data(1, Buffer.from("POST /quitquitquit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
        }
        expect(answer).toEqual({ status: 503 });
      } finally {
        h.destroy();
      }
      await stillServes();
    });
  }
});

describe("HTTP/2 abuse on the waypoint's 15008", () => {
  it("rapid reset → GOAWAY ENHANCE_YOUR_CALM, logged once; the waypoint keeps serving", async () => {
    const h = await raw();
    const frames: Buffer[] = [];
    for (let i = 0; i < 3000; i++) frames.push(h.connectFrame(1 + 2 * i, `${WEB_VIP}:80`), h.rst(1 + 2 * i));
    h.write(Buffer.concat(frames));
    await h.closed;
    expect(h.goaway()?.code).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    await eventually(() => expect(logsWith(t.logs, { code: "AMB_HBONE_RESET_FLOOD" })).toHaveLength(1));
    await stillServes();
  });

  it("streams past the advertised limit are refused one by one; the first stream still works", async () => {
    const h = await raw();
    try {
      const limit = h.serverSettings.get(0x3)!;
      for (let first = 0; first <= limit; first += 50) {
        const ids: number[] = [];
        for (let i = first; i < Math.min(first + 50, limit + 1); i++) ids.push(1 + 2 * i);
        h.write(Buffer.concat(ids.map((id) => h.connectFrame(id, `${WEB_VIP}:80`))));
        await h.waitFor(
          (f) =>
            f.streamId === ids.at(-1) && (f.type === FrameType.HEADERS || f.type === FrameType.RST_STREAM),
          15_000,
        );
      }
      const refusedStreams = h.frames.filter((f) => f.type === FrameType.RST_STREAM);
      expect(refusedStreams.at(-1)?.streamId).toBe(1 + 2 * limit);
      expect(refusedStreams.every((f) => f.payload.readUInt32BE(0) === ErrorCode.REFUSED_STREAM)).toBe(true);
      expect(h.goaway()).toBeUndefined();
      h.data(
        1,
        Buffer.from("GET /first HTTP/1.1\r\nHost: web.demo.svc.cluster.local\r\nConnection: close\r\n\r\n"),
      );
      await eventually(() => expect(h.received(1).toString()).toMatch(/^HTTP\/1\.1 200/));
    } finally {
      h.destroy();
    }
    await eventually(() => expect(logsWith(t.logs, { code: "AMB_HBONE_STREAM_REFUSED" })).toHaveLength(1));
    await stillServes();
  }, 60_000);
});
