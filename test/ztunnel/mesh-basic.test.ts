// Two nodes, two ztunnels, echo servers, on 127.21.x.y: a SOCKS5 client on node A reaches pods on
// node B by service name, VIP and pod IP over HBONE, with both identities visible to the app side.

import { run } from "@ambient/ctl";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { metricValue, scrape, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpGetViaSocks, socksConnect } from "../utils/socks.js";

let t: TestMesh;

beforeAll(async () => {
  t = await startMesh({
    "mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
      node("node-a", "127.21.1.1"),
      node("node-b", "127.21.2.1"),
      pod({
        name: "client",
        namespace: "demo",
        node: "node-a",
        ip: "127.21.1.10",
        sa: "client",
        labels: { app: "client" },
      }),
      pod({
        name: "web-1",
        namespace: "demo",
        node: "node-b",
        ip: "127.21.2.10",
        sa: "web",
        labels: { app: "web", version: "v1" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      pod({
        name: "web-2",
        namespace: "demo",
        node: "node-b",
        ip: "127.21.2.11",
        sa: "web",
        labels: { app: "web", version: "v2" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      service({
        name: "web",
        namespace: "demo",
        vip: "127.21.100.1",
        selector: { app: "web" },
        ports: [{ port: 80, targetPort: "http", name: "http" }],
      }),
    ),
  });
}, 30_000);

afterAll(async () => t?.stop());

describe("local mesh: SOCKS5 → HBONE → app", () => {
  it("reaches a pod on another node by service name", async () => {
    const res = await httpGetViaSocks("127.21.1.10", "web.demo.svc.cluster.local", 80, "/hello");
    expect(res.status).toBe(200);
    const body = res.json<{ pod: string; namespace: string; path: string }>();
    expect(body.namespace).toBe("demo");
    expect(["web-1", "web-2"]).toContain(body.pod);
    expect(body.path).toBe("/hello");
  });

  it("reaches it by VIP and by pod IP", async () => {
    expect((await httpGetViaSocks("127.21.1.10", "127.21.100.1", 80)).status).toBe(200);
    const direct = await httpGetViaSocks("127.21.1.10", "127.21.2.11", 8080);
    expect(direct.json<{ pod: string }>().pod).toBe("web-2");
  });

  it("round-robins across the service's endpoints", async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++)
      seen.push((await httpGetViaSocks("127.21.1.10", "127.21.100.1", 80)).json<{ pod: string }>().pod);
    expect(new Set(seen)).toEqual(new Set(["web-1", "web-2"]));
    expect(seen[0]).not.toBe(seen[1]);
  });

  it("records both identities and mutual TLS in Istio's metrics on both nodes", async () => {
    await httpGetViaSocks("127.21.1.10", "127.21.2.10", 8080);
    const src = await scrape("127.21.1.1");
    const labels = {
      source_principal: "spiffe://cluster.local/ns/demo/sa/client",
      destination_principal: "spiffe://cluster.local/ns/demo/sa/web",
      connection_security_policy: "mutual_tls",
    };
    expect(
      metricValue(src, "istio_tcp_connections_opened_total", { ...labels, reporter: "source" }),
    ).toBeGreaterThan(0);
    const dst = await scrape("127.21.2.1");
    expect(
      metricValue(dst, "istio_tcp_connections_closed_total", { ...labels, reporter: "destination" }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(dst, "istio_tcp_received_bytes_total", { ...labels, reporter: "destination" }),
    ).toBeGreaterThan(0);
  });
});

describe("ambientctl ztunnel-config", () => {
  it("shows what one ztunnel holds: workloads, services, policies and its certificates", async () => {
    const lines: string[] = [];
    const code = await run(["ztunnel-config", "--node-ip", "127.21.2.1"], {}, (l) => lines.push(l));
    const out = lines.join("\n");
    expect(code).toBe(0);
    // istioctl's columns: NAMESPACE POD NAME ADDRESS NODE WAYPOINT PROTOCOL, ENDPOINTS as healthy/total.
    expect(out).toMatch(/demo\s+web-1\s+127\.21\.2\.10\s+node-b\s+None\s+HBONE/);
    expect(out).toMatch(/demo\s+web\s+127\.21\.100\.1\s+None\s+2\/2/);
    expect(out).toMatch(/spiffe:\/\/cluster\.local\/ns\/demo\/sa\/web\s+Leaf\s+Available\s+true\s+[0-9a-f]+/);
  });

  it("lists every certificate of a chain: the leaf, then the root that signed it", async () => {
    const lines: string[] = [];
    expect(
      await run(["ztunnel-config", "certificates", "--node-ip", "127.21.2.1"], {}, (l) => lines.push(l)),
    ).toBe(0);
    const rows = lines.join("\n").split("\n").slice(1);
    const web = rows.filter((r) => r.startsWith("spiffe://cluster.local/ns/demo/sa/web "));
    expect(web.map((r) => r.split(/\s{3,}/)[1])).toEqual(["Leaf", "Root"]);
    // Each row has its own certificate's serial and validity, not the leaf's repeated.
    const [leaf, root] = web.map((r) => r.split(/\s{3,}/));
    expect(leaf![4]).not.toBe(root![4]);
    expect(root![3]).toBe("true");
    const json: string[] = [];
    await run(["ztunnel-config", "certificates", "--node-ip", "127.21.2.1", "-o", "json"], {}, (l) =>
      json.push(l),
    );
    const [cert] = JSON.parse(json.join("\n")) as {
      chain: { type: string; serial: string }[];
      serial: string;
    }[];
    expect(cert!.chain[0]).toMatchObject({ type: "Leaf", serial: cert!.serial });
  });

  it("lists open connections on both ztunnels with istioctl's columns, and forgets them once closed", async () => {
    const ctl = async (nodeIp: string) => {
      const lines: string[] = [];
      expect(
        await run(["ztunnel-config", "connections", "--node-ip", nodeIp], {}, (l) => lines.push(l)),
      ).toBe(0);
      return lines.join("\n");
    };
    expect(await ctl("127.21.1.1")).toMatch(
      /^WORKLOAD\s+DIRECTION\s+LOCAL\s+REMOTE\s+REMOTE TARGET\s+PROTOCOL$/m,
    );
    const socket = await socksConnect(
      { host: "127.21.1.10", port: 15080 },
      { host: "127.21.100.1", port: 80 },
    );
    try {
      const local = `${socket.localAddress}:${socket.localPort}`;
      // Outbound on the client's node: from the app's socket to a web pod's 15008, for the VIP it asked.
      const outbound = await eventually(async () => {
        const out = await ctl("127.21.1.1");
        const m = out.match(
          /client\.demo\s+Outbound\s+(\S+)\s+(127\.21\.2\.1[01]):15008\s+127\.21\.100\.1:80\s+HBONE/,
        );
        expect(m, out).not.toBeNull();
        return { local: m![1], pod: m![2] };
      });
      expect(outbound.local).toBe(local);
      // Inbound on the web pod's node: to that pod's app port, from the client node's ztunnel.
      await eventually(async () => {
        const out = await ctl("127.21.2.1");
        expect(out).toMatch(
          new RegExp(
            `web-[12]\\.demo\\s+Inbound\\s+${outbound.pod!.replaceAll(".", "\\.")}:8080\\s+127\\.21\\.1\\.\\d+:\\d+\\s+HBONE`,
          ),
        );
      });
    } finally {
      socket.destroy();
    }
    await eventually(async () => expect(await ctl("127.21.1.1")).not.toMatch(/Outbound/));
    await eventually(async () => expect(await ctl("127.21.2.1")).not.toMatch(/Inbound/));
  });

  it("says which address it could not read", async () => {
    const code = await run(["ztunnel-config", "--node-ip", "127.21.9.9"], {}, () => {});
    expect(code).toBe(2);
  });
});
