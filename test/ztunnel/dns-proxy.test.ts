// ztunnel's DNS proxy in a local mesh on 127.35.x.y: an unmodified client (node's dns.Resolver,
// c-ares) asks a pod's 15053 over UDP and TCP; mesh names are answered from xDS, the rest goes to
// an upstream the test runs itself; malformed packets get FORMERR or nothing, and the proxy lives on.

import { Resolver } from "node:dns/promises";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  frame,
  query,
  startTestUpstream,
  type TestUpstream,
  tcpExchange,
  udpExchange,
} from "../utils/dns.js";
import { docs, namespace, node, pod, service } from "../utils/index.js";
import { metricValue, scrape, startMesh, type TestMesh } from "../utils/mesh.js";

const NODE = "127.35.1.1";
const CLIENT = "127.35.1.10";
const OTHER_NS_CLIENT = "127.35.1.11";
const UPSTREAM = "127.35.0.53";

let t: TestMesh;
let upstream: TestUpstream;

beforeAll(async () => {
  upstream = await startTestUpstream(UPSTREAM, { "outside.example.org": "192.0.2.7" });
  t = await startMesh(
    {
      "mesh.yaml": docs(
        namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
        namespace("other", { "istio.io/dataplane-mode": "ambient" }),
        node("node-a", NODE),
        pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, labels: { app: "client" } }),
        pod({ name: "client", namespace: "other", node: "node-a", ip: OTHER_NS_CLIENT }),
        pod({
          name: "db-0",
          namespace: "demo",
          node: "node-a",
          ip: "127.35.1.20",
          labels: { app: "db" },
          ports: [{ name: "pg", containerPort: 5432 }],
        }),
        service({
          name: "web",
          namespace: "demo",
          vip: "127.35.100.1",
          selector: { app: "client" },
          ports: [{ port: 80 }],
        }),
        `apiVersion: v1
kind: Service
metadata: { name: db, namespace: demo }
spec:
  clusterIP: None
  selector: { app: db }
  ports: [{ port: 5432 }]
`,
        `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: wild, namespace: demo }
spec:
  hosts: ["*.wild.test"]
  addresses: [127.35.100.9]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: NONE
`,
        `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: auto, namespace: demo }
spec:
  hosts: [auto.external.test]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: DNS
`,
      ),
    },
    {
      ztunnelArgs: () => [
        "--dns-proxy",
        "--dns-upstream",
        `${UPSTREAM}:${upstream.port}`,
        "--dns-upstream-timeout",
        "500ms",
      ],
    },
  );
}, 30_000);

afterAll(async () => {
  await t?.stop();
  await upstream?.close();
});

function resolverFor(podIp: string): Resolver {
  // c-ares with one try: a lost answer fails the test rather than retrying.
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`${podIp}:15053`]);
  return r;
}

describe("ztunnel DNS proxy (local mode, 127.35.x.y)", () => {
  it("answers Service names with their VIP, by FQDN and by the pod's search-list forms", async () => {
    const r = resolverFor(CLIENT);
    expect(await r.resolve4("web.demo.svc.cluster.local")).toEqual(["127.35.100.1"]);
    expect(await r.resolve4("web")).toEqual(["127.35.100.1"]);
    expect(await r.resolve4("web.demo")).toEqual(["127.35.100.1"]);
    expect(await r.resolve4("web.demo.svc")).toEqual(["127.35.100.1"]);
  });

  it("short names resolve in the querying pod's namespace", async () => {
    await expect(resolverFor(OTHER_NS_CLIENT).resolve4("web")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(await resolverFor(OTHER_NS_CLIENT).resolve4("web.demo")).toEqual(["127.35.100.1"]);
  });

  it("AAAA for a service without an IPv6 VIP: NOERROR with no answers (ENODATA), not NXDOMAIN", async () => {
    await expect(resolverFor(CLIENT).resolve6("web.demo.svc.cluster.local")).rejects.toMatchObject({
      code: "ENODATA",
    });
  });

  it("headless services answer their ready pods' IPs; wildcard ServiceEntry hosts their address", async () => {
    const r = resolverFor(CLIENT);
    expect(await r.resolve4("db.demo.svc.cluster.local")).toEqual(["127.35.1.20"]);
    expect(await r.resolve4("api.wild.test")).toEqual(["127.35.100.9"]);
  });

  it("a ServiceEntry without addresses answers its auto-allocated VIP (240.240.0.0/16)", async () => {
    const [ip] = await resolverFor(CLIENT).resolve4("auto.external.test");
    expect(ip).toMatch(/^240\.240\.\d+\.\d+$/);
  });

  it("forwards other names to the upstream, over UDP and over TCP", async () => {
    expect(await resolverFor(CLIENT).resolve4("outside.example.org")).toEqual(["192.0.2.7"]);
    expect(upstream.asked.udp).toContain("outside.example.org");
    await expect(resolverFor(CLIENT).resolve4("missing.example.org")).rejects.toMatchObject({
      code: "ENOTFOUND",
    });
    const [answer] = await tcpExchange(CLIENT, 15053, frame(query("outside.example.org")), 1);
    expect(dnsPacket.decode(answer!).answers).toMatchObject([{ data: "192.0.2.7" }]);
    expect(upstream.asked.tcp).toContain("outside.example.org");
  });

  it("TCP: several length-prefixed queries on one connection, answered by id", async () => {
    const answers = await tcpExchange(
      CLIENT,
      15053,
      Buffer.concat([
        frame(query("web", "A", 1)),
        frame(query("db.demo.svc.cluster.local", "A", 2)),
        frame(query("web", "AAAA", 3)),
      ]),
      3,
    );
    const byId = new Map(
      answers
        .map((a) => dnsPacket.decode(a))
        .map((p) => [p.id, p.answers?.map((x) => (x as { data?: unknown }).data)]),
    );
    expect(byId).toEqual(
      new Map<number | undefined, unknown>([
        [1, ["127.35.100.1"]],
        [2, ["127.35.1.20"]],
        [3, []],
      ]),
    );
  });

  it("TCP: 40 pipelined queries (more than the 16 in flight) on a connection the client half-closed, all answered", async () => {
    const queries = Array.from({ length: 40 }, (_, i) => frame(query("web", "A", 100 + i)));
    const answers = await tcpExchange(CLIENT, 15053, Buffer.concat(queries), 40, 3000, true);
    expect(answers.map((a) => dnsPacket.decode(a).id).sort((x, y) => x! - y!)).toEqual(
      Array.from({ length: 40 }, (_, i) => 100 + i),
    );
  });

  it("malformed: FORMERR when the header parses, nothing otherwise, and the proxy keeps answering", async () => {
    const garbage = Buffer.concat([query("web").subarray(0, 12), Buffer.from([0xff, 0xff, 0xff])]);
    const formerr = await udpExchange(CLIENT, 15053, garbage);
    expect(formerr?.readUInt16BE(0)).toBe(4242);
    expect(formerr![3]! & 0xf).toBe(1);
    expect(await udpExchange(CLIENT, 15053, Buffer.from([1, 2, 3]))).toBeUndefined();
    // A TCP stream whose message has no header is closed: its framing is all that was trusted.
    expect(await tcpExchange(CLIENT, 15053, frame(Buffer.from([9])), 1, 500)).toEqual([]);
    expect(await resolverFor(CLIENT).resolve4("web")).toEqual(["127.35.100.1"]);
  });

  it("counts requests by type and outcome", async () => {
    const text = await scrape(NODE);
    expect(
      metricValue(text, "istio_dns_requests_total", {
        request_type: "A",
        outcome: "local",
        transport: "udp",
      }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(text, "istio_dns_requests_total", {
        request_type: "A",
        outcome: "forwarded",
        transport: "tcp",
      }),
    ).toBeGreaterThan(0);
    expect(metricValue(text, "istio_dns_upstream_requests_total", { request_type: "A" })).toBeGreaterThan(0);
  });
});
