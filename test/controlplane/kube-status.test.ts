// Status where kubectl shows it: the control plane in Kubernetes mode writes Istio's conditions to
// the status subresource, read back with the real kubectl. A Service or a ServiceEntry using a
// waypoint gets istio.io/WaypointBound and loses it when unlabelled; an L4 policy gets ZtunnelAccepted/Accepted; a
// policy with HTTP rules and no waypoint says ztunnel does not enforce them; a policy targeting a
// waypoint gets WaypointAccepted; a refused write is retried; no condition is written twice for the
// same state.

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestApiServer } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../utils/index.js";
import {
  type ManifestsCluster,
  type RunningKubeControlPlane,
  startManifestsCluster,
} from "../utils/kube-controlplane.js";

let api: TestApiServer;
let env: RunningKubeControlPlane;
let cluster: ManifestsCluster;
let kubectl: ManifestsCluster["kubectl"];

const MANIFESTS = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: demo
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: demo
  labels:
    istio.io/use-waypoint: waypoint
spec:
  selector: {app: reviews}
  ports: [{port: 9080, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: ratings
  namespace: demo
spec:
  selector: {app: ratings}
  ports: [{port: 9080, name: http}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
  namespace: demo
  labels:
    istio.io/use-waypoint: waypoint
spec:
  hosts: [httpbin.example.com]
  addresses: [240.240.0.1]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: l4-only
  namespace: demo
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [demo]}}]
    to: [{operation: {ports: ["9080"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: http-on-ztunnel
  namespace: demo
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET], paths: ["/api/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: at-waypoint
  namespace: demo
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: at-unbound-service
  namespace: demo
spec:
  targetRefs:
  - {kind: Service, group: "", name: ratings}
  rules:
  - to: [{operation: {methods: [GET]}}]
`;

beforeAll(async () => {
  cluster = await startManifestsCluster(MANIFESTS);
  ({ api, env, kubectl } = cluster);
}, 60_000);

afterAll(async () => cluster?.stop());

type Cond = { type: string; status: string; reason: string; message: string; lastTransitionTime: string };

async function conditions(kind: string, name: string): Promise<Cond[]> {
  const out = await kubectl("get", kind, name, "-n", "demo", "-o", "jsonpath={.status.conditions}");
  return out.trim() ? (JSON.parse(out) as Cond[]) : [];
}

async function condition(kind: string, name: string, type: string): Promise<Cond> {
  return eventually(async () => {
    const c = (await conditions(kind, name)).find((x) => x.type === type);
    if (!c) throw new Error(`${kind}/${name} has no ${type} yet`);
    return c;
  }, 15_000);
}

describe("status conditions in Kubernetes mode", () => {
  it("marks a Service bound to a waypoint with istio.io/WaypointBound, and drops it when unlabelled", async () => {
    const bound = await condition("service", "reviews", "istio.io/WaypointBound");
    expect(bound).toMatchObject({
      status: "True",
      reason: "WaypointAccepted",
      message: "Successfully attached to waypoint demo/waypoint",
    });
    expect(bound.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // A Service without a waypoint carries none of our conditions.
    expect(await conditions("service", "ratings")).toEqual([]);

    await kubectl("label", "service", "reviews", "-n", "demo", "istio.io/use-waypoint-");
    await eventually(async () => {
      expect(await conditions("service", "reviews")).toEqual([]);
    }, 15_000);
  });

  it("marks a ServiceEntry bound to a waypoint too, shown by kubectl get se, and drops it when unlabelled", async () => {
    expect(await condition("serviceentry", "httpbin-ext", "istio.io/WaypointBound")).toMatchObject({
      status: "True",
      reason: "WaypointAccepted",
      message: "Successfully attached to waypoint demo/waypoint",
    });
    // The short name and the printer columns of the CRD.
    const table = await kubectl("get", "se", "-n", "demo");
    expect(table).toMatch(/httpbin-ext\s+\["httpbin\.example\.com"\]\s+MESH_EXTERNAL\s+DNS/);
    await kubectl("label", "serviceentry", "httpbin-ext", "-n", "demo", "istio.io/use-waypoint-");
    await eventually(async () => {
      expect(await conditions("serviceentry", "httpbin-ext")).toEqual([]);
    }, 15_000);
  });

  it("accepts an L4 policy on ztunnel", async () => {
    expect(await condition("authorizationpolicy", "l4-only", "ZtunnelAccepted")).toMatchObject({
      status: "True",
      reason: "Accepted",
      message: "attached to ztunnel",
    });
  });

  it("says ztunnel does not enforce HTTP rules of a policy without a waypoint", async () => {
    const c = await condition("authorizationpolicy", "http-on-ztunnel", "ZtunnelAccepted");
    expect(c.reason).toBe("UnsupportedValue");
    expect(c.message).toContain("ztunnel does not support HTTP attributes (found: methods, paths)");
    expect(c.message).toContain("use a waypoint to enforce HTTP rules");
    // kubectl describe shows the same condition to an operator.
    const described = await kubectl("describe", "authorizationpolicy", "http-on-ztunnel", "-n", "demo");
    expect(described).toContain("ZtunnelAccepted");
    expect(described).toContain("UnsupportedValue");
  });

  it("accepts a policy targeting a waypoint with WaypointAccepted, and refuses one whose Service has none", async () => {
    expect(await condition("authorizationpolicy", "at-waypoint", "WaypointAccepted")).toMatchObject({
      status: "True",
      reason: "Accepted",
      message: "bound to demo/waypoint",
    });
    expect(await conditions("authorizationpolicy", "at-waypoint")).toHaveLength(1);
    expect(await condition("authorizationpolicy", "at-unbound-service", "WaypointAccepted")).toMatchObject({
      status: "False",
      reason: "AncestorNotBound",
      message: "the Service demo/ratings is not bound to a waypoint",
    });
  });

  it("retries a status write the API server refused, with a warning naming the object", async () => {
    api.faults.failNext(2, 503, { method: "PATCH", path: "/services/details/status" });
    const dir = await mkdtemp(join(tmpdir(), "ambient-status-"));
    await writeFile(
      join(dir, "details.yaml"),
      `apiVersion: v1
kind: Service
metadata: {name: details, namespace: demo, labels: {istio.io/use-waypoint: waypoint}}
spec: {selector: {app: details}, ports: [{port: 9080}]}
`,
    );
    await kubectl("apply", "-f", join(dir, "details.yaml"));
    expect(await condition("service", "details", "istio.io/WaypointBound")).toMatchObject({ status: "True" });
    const refused = api.requests.filter((r) => r.path.endsWith("/details/status") && r.status === 503);
    expect(refused).toHaveLength(2);
    expect(
      env.logs.some(
        (l) => l.object === "Service/demo/details" && String(l.msg).startsWith("cannot write status"),
      ),
    ).toBe(true);
  });

  it("writes each status once: a publish with nothing new for it writes nothing", async () => {
    await condition("authorizationpolicy", "l4-only", "ZtunnelAccepted");
    const writes = (name: string) =>
      api.requests.filter((r) => r.method === "PATCH" && r.path.endsWith(`/${name}/status`)).length;
    expect(writes("l4-only")).toBe(1);
    // An edit to the policy that changes nothing of its status: translated and published again.
    await kubectl("annotate", "authorizationpolicy", "l4-only", "-n", "demo", "note=touched");
    await eventually(() => {
      const ap = env.cp.objects().find((o) => o.metadata.name === "l4-only");
      expect(ap?.metadata.annotations?.note).toBe("touched");
    }, 15_000);
    // Then a change that does need a write: writes are serialized, so one for l4-only, had it been
    // queued by the publish above, would have gone first.
    await kubectl("label", "service", "ratings", "-n", "demo", "istio.io/use-waypoint=waypoint");
    expect(await condition("service", "ratings", "istio.io/WaypointBound")).toMatchObject({ status: "True" });
    await eventually(async () => {
      const c = await condition("authorizationpolicy", "at-unbound-service", "WaypointAccepted");
      expect(c).toMatchObject({ status: "True", message: "bound to demo/waypoint" });
    }, 15_000);
    expect(writes("l4-only")).toBe(1);
    expect(writes("ratings")).toBe(1);
  });
});
