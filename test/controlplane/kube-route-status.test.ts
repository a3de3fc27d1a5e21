// Gateway API route status where kubectl shows it: the control plane in Kubernetes mode writes each
// HTTPRoute's and GRPCRoute's status.parents (controllerName istio.io/gateway-controller,
// Accepted, ResolvedRefs) to the status subresource, read back with the real kubectl. A route on a
// Service without a waypoint is not accepted (ztunnel is L4), and becomes accepted when the
// Service gets one; a missing backend is named in ResolvedRefs; another controller's parent entry stays.

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../utils/index.js";
import { type ManifestsCluster, startManifestsCluster } from "../utils/kube-controlplane.js";

let cluster: ManifestsCluster;
let kubectl: ManifestsCluster["kubectl"];

const service = (name: string, labels = "{}") => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: demo, labels: ${labels}}
spec: {selector: {app: ${name}}, ports: [{port: 9080, name: http}]}
---
`;

const MANIFESTS = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: demo}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
${service("reviews", "{istio.io/use-waypoint: waypoint}")}${service("reviews-v1")}${service("reviews-v2")}${service("ratings")}apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews-canary, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  hostnames: [reviews]
  rules:
  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 90}
    - {name: reviews-v2, port: 9080, weight: 10}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings-route, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: ratings}]
  rules:
  - backendRefs: [{name: ratings-v9, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: reviews-grpc, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules:
  - matches: [{method: {service: reviews.Reviews, method: Get}}]
    backendRefs: [{name: reviews-v2, port: 9080}]
`;

beforeAll(async () => {
  cluster = await startManifestsCluster(MANIFESTS);
  ({ kubectl } = cluster);
}, 60_000);

afterAll(async () => cluster?.stop());

type Cond = { type: string; status: string; reason: string; message: string; lastTransitionTime: string };
type Parent = { parentRef: Record<string, unknown>; controllerName: string; conditions: Cond[] };

async function parents(kind: string, name: string): Promise<Parent[]> {
  const out = await kubectl("get", kind, name, "-n", "demo", "-o", "jsonpath={.status.parents}");
  return out.trim() ? (JSON.parse(out) as Parent[]) : [];
}

async function parent(kind: string, name: string): Promise<Parent> {
  return eventually(async () => {
    const [p] = await parents(kind, name);
    if (!p) throw new Error(`${kind}/${name} has no status.parents yet`);
    return p;
  }, 15_000);
}

const cond = (p: Parent, type: string) => p.conditions.find((c) => c.type === type);

describe("route status in Kubernetes mode", () => {
  it("accepts an HTTPRoute on a Service with a waypoint and resolves its backends", async () => {
    const p = await parent("httproute", "reviews-canary");
    expect(p.controllerName).toBe("istio.io/gateway-controller");
    expect(p.parentRef).toMatchObject({ group: "", kind: "Service", name: "reviews", port: 9080 });
    expect(cond(p, "Accepted")).toMatchObject({ status: "True", reason: "Accepted" });
    expect(cond(p, "ResolvedRefs")).toMatchObject({ status: "True", reason: "ResolvedRefs" });
    expect(cond(p, "Accepted")?.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // kubectl get shows the CRD's columns.
    const table = await kubectl("get", "httproute", "-n", "demo");
    expect(table).toMatch(/NAME\s+HOSTNAMES\s+AGE/);
    expect(table).toMatch(/reviews-canary\s+\["reviews"\]/);
  });

  it("accepts a GRPCRoute too", async () => {
    const p = await parent("grpcroute", "reviews-grpc");
    expect(cond(p, "Accepted")).toMatchObject({ status: "True", reason: "Accepted" });
  });

  it("refuses a route whose Service has no waypoint and names a missing backend; accepts it once the Service has one", async () => {
    const p = await parent("httproute", "ratings-route");
    expect(cond(p, "Accepted")).toMatchObject({ status: "False", reason: "NoMatchingParent" });
    expect(cond(p, "Accepted")?.message).toContain("the Service has no waypoint");
    expect(cond(p, "ResolvedRefs")).toMatchObject({
      status: "False",
      reason: "BackendNotFound",
      message: "backend Service demo/ratings-v9 not found",
    });

    await kubectl("label", "service", "ratings", "-n", "demo", "istio.io/use-waypoint=waypoint");
    await eventually(async () => {
      const [now] = await parents("httproute", "ratings-route");
      expect(cond(now!, "Accepted")).toMatchObject({ status: "True", reason: "Accepted" });
    }, 15_000);
  });

  it("keeps another controller's parent entry when it writes its own", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ambient-route-status-"));
    await writeFile(
      join(dir, "shared.yaml"),
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shared, namespace: demo}
spec:
  parentRefs: [{name: ingress}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
`,
    );
    await kubectl("apply", "-f", join(dir, "shared.yaml"));
    const foreign = {
      parentRef: { name: "ingress" },
      controllerName: "example.com/ingress-controller",
      conditions: [
        {
          type: "Accepted",
          status: "True",
          reason: "Accepted",
          message: "ok",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    await kubectl(
      "patch",
      "httproute",
      "shared",
      "-n",
      "demo",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { parents: [foreign] } }),
    );
    await kubectl(
      "patch",
      "httproute",
      "shared",
      "-n",
      "demo",
      "--type=merge",
      "-p",
      JSON.stringify({
        spec: { parentRefs: [{ name: "ingress" }, { group: "", kind: "Service", name: "reviews" }] },
      }),
    );
    await eventually(async () => {
      const all = await parents("httproute", "shared");
      expect(all.map((p) => p.controllerName).sort()).toEqual([
        "example.com/ingress-controller",
        "istio.io/gateway-controller",
      ]);
    }, 15_000);
  });

  it("drops its status entry when the route no longer names a parent it serves", async () => {
    await kubectl(
      "patch",
      "grpcroute",
      "reviews-grpc",
      "-n",
      "demo",
      "--type=merge",
      "-p",
      JSON.stringify({
        spec: { parentRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "elsewhere" }] },
      }),
    );
    await eventually(async () => {
      expect(await parents("grpcroute", "reviews-grpc")).toEqual([]);
    }, 15_000);
  });
});
