// A namespace waypoint on 127.25.x.y: service traffic goes client → ztunnel → waypoint → ztunnel →
// app, and the waypoint reports Istio's HTTP metrics.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, metricValue, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpGetViaSocks } from "../utils/socks.js";

const CLIENT = "127.25.1.10";
const WAYPOINT_GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: demo
  labels: { istio.io/waypoint-for: service }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.25.2.40 }]
  listeners:
    - { name: mesh, port: 15008, protocol: HBONE }
`;

let t: TestMesh;
beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.25.1.1"),
      node("node-b", "127.25.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({
        name: "web-v1",
        namespace: "demo",
        node: "node-b",
        ip: "127.25.2.10",
        sa: "web",
        labels: { app: "web", version: "v1" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      pod({
        name: "web-v2",
        namespace: "demo",
        node: "node-b",
        ip: "127.25.2.11",
        sa: "web",
        labels: { app: "web", version: "v2" },
        ports: [{ name: "http", containerPort: 8080 }],
      }),
      service({
        name: "web",
        namespace: "demo",
        vip: "127.25.100.1",
        selector: { app: "web" },
        ports: [{ port: 80, targetPort: "http", name: "http" }],
      }),
    ),
    "10-waypoint.yaml": WAYPOINT_GATEWAY,
  });
}, 30_000);
afterAll(async () => t?.stop());

describe("waypoint in the path", () => {
  it("carries service traffic and reports istio_requests_total with reporter=waypoint", async () => {
    const res = await httpGetViaSocks(CLIENT, "web.demo.svc.cluster.local", 80, "/through-waypoint");
    if (res.status !== 200)
      for (const l of t.logs)
        if (l["level"] === "warn" || l["level"] === "error") expect(res.status).toBe(200);
    expect(res.json<{ path: string }>().path).toBe("/through-waypoint");
    const wp = [...t.mesh.pods.values()].find((p) => p.waypoint)!;
    const text = await (await fetch(`http://${wp.ip}:15020/metrics`)).text();
    expect(
      metricValue(text, "istio_requests_total", {
        reporter: "waypoint",
        response_code: "200",
        source_principal: "spiffe://cluster.local/ns/demo/sa/client",
        destination_service: "web.demo.svc.cluster.local",
      }),
    ).toBeGreaterThan(0);
    await eventually(() =>
      expect(
        logsWith(t.logs, { component: "access", path: "/through-waypoint", response_code: 200 }),
      ).toHaveLength(1),
    );
  });
});
