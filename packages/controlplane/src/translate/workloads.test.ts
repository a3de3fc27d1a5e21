import type { Workload } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { translate } from "./index.js";

function load(text: string): KubeObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as KubeObject);
}

function workloads(text: string): Workload[] {
  return translate(load(text)).workloads;
}

function only(text: string): Workload {
  const list = workloads(text);
  expect(list).toHaveLength(1);
  return list[0]!;
}

const NS = `
apiVersion: v1
kind: Namespace
metadata: { name: demo, labels: { istio.io/dataplane-mode: ambient } }
`;

function pod(
  fields: { name?: string; labels?: string; spec?: string; status?: string; meta?: string } = {},
): string {
  return `
---
apiVersion: v1
kind: Pod
metadata:
  name: ${fields.name ?? "web"}
  namespace: demo
  labels: ${fields.labels ?? "{ app: web }"}
${fields.meta ?? ""}
spec:
  nodeName: node-1
${fields.spec ?? ""}
status:
${fields.status ?? "  phase: Running\n  podIP: 10.0.0.5"}
`;
}

describe("workloads", () => {
  it("builds a workload from a pod", () => {
    const w = only(NS + pod({ spec: "  serviceAccountName: web-sa" }));
    expect(w).toMatchObject({
      uid: "Kubernetes//Pod/demo/web",
      name: "web",
      namespace: "demo",
      addresses: [new Uint8Array([10, 0, 0, 5])],
      network: "",
      tunnelProtocol: "HBONE",
      trustDomain: "cluster.local",
      serviceAccount: "web-sa",
      node: "node-1",
      workloadType: "POD",
      workloadName: "web",
      status: "HEALTHY",
      clusterId: "Kubernetes",
      hostname: "",
      services: {},
      authorizationPolicies: [],
    });
    expect(w.waypoint).toBeUndefined();
  });

  it("uses the options for cluster, trust domain and network, and the default service account", () => {
    const [w] = translate(load(NS + pod()), {
      clusterId: "c1",
      trustDomain: "example.org",
      network: "net1",
    }).workloads;
    expect(w).toMatchObject({
      uid: "c1//Pod/demo/web",
      clusterId: "c1",
      trustDomain: "example.org",
      network: "net1",
      serviceAccount: "default",
    });
  });

  it("carries every pod IP, IPv4 and IPv6", () => {
    const w = only(
      NS + pod({ status: "  podIP: 10.0.0.5\n  podIPs: [{ ip: 10.0.0.5 }, { ip: 'fd00::5' }]" }),
    );
    expect(w.addresses.map((a) => a.length)).toEqual([4, 16]);
    expect(w.addresses[1]![15]).toBe(5);
  });

  it("skips pods without an IP, on the host network, or finished", () => {
    const text =
      NS +
      pod({ name: "no-ip", status: "  phase: Pending" }) +
      pod({ name: "host", spec: "  hostNetwork: true" }) +
      pod({ name: "done", status: "  phase: Succeeded\n  podIP: 10.0.0.6" }) +
      pod({ name: "failed", status: "  phase: Failed\n  podIP: 10.0.0.7" }) +
      pod({ name: "ok" });
    expect(workloads(text).map((w) => w.name)).toEqual(["ok"]);
  });

  it("is NONE-tunnelled when not enrolled", () => {
    const w = only(NS + pod({ labels: "{ app: web, istio.io/dataplane-mode: none }" }));
    expect(w.tunnelProtocol).toBe("NONE");
  });

  describe("canonical name and revision", () => {
    it("prefer Istio's labels, then app.kubernetes.io, then app/version", () => {
      const labels = `{ service.istio.io/canonical-name: c, app.kubernetes.io/name: k, app: a,
        service.istio.io/canonical-revision: r1, app.kubernetes.io/version: k1, version: v1 }`;
      expect(only(NS + pod({ labels }))).toMatchObject({ canonicalName: "c", canonicalRevision: "r1" });
      expect(
        only(
          NS +
            pod({
              labels: "{ app.kubernetes.io/name: k, app: a, app.kubernetes.io/version: k1, version: v1 }",
            }),
        ),
      ).toMatchObject({
        canonicalName: "k",
        canonicalRevision: "k1",
      });
      expect(only(NS + pod({ labels: "{ app: a, version: v1 }" }))).toMatchObject({
        canonicalName: "a",
        canonicalRevision: "v1",
      });
    });

    it("fall back to the workload name and 'latest'", () => {
      const meta =
        "  ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: shop-7d4b9c8f6b, controller: true }]";
      expect(only(NS + pod({ labels: "{}", meta }))).toMatchObject({
        canonicalName: "shop",
        canonicalRevision: "latest",
      });
    });
  });

  describe("workload name and type from owners", () => {
    const owned = (kind: string, name: string, labels = "{}") =>
      only(
        NS +
          pod({
            labels,
            meta: `  ownerReferences: [{ apiVersion: x/v1, kind: ${kind}, name: ${name}, controller: true }]`,
          }),
      );

    it("rolls a ReplicaSet up to its Deployment", () => {
      expect(owned("ReplicaSet", "shop-7d4b9c8f6b")).toMatchObject({
        workloadType: "DEPLOYMENT",
        workloadName: "shop",
      });
      expect(owned("ReplicaSet", "shop-v2-abc12", "{ pod-template-hash: abc12 }")).toMatchObject({
        workloadName: "shop-v2",
      });
      // Kubernetes never puts vowels in a pod-template-hash, so "main" is part of the name.
      expect(owned("ReplicaSet", "shop-rs-main")).toMatchObject({
        workloadType: "DEPLOYMENT",
        workloadName: "shop-rs-main",
      });
    });

    it("recognises Jobs and the Jobs of CronJobs", () => {
      expect(owned("Job", "migrate")).toMatchObject({ workloadType: "JOB", workloadName: "migrate" });
      expect(owned("Job", "backup-28391220")).toMatchObject({
        workloadType: "CRONJOB",
        workloadName: "backup",
      });
    });

    it("treats other controllers as deployments and owner-less pods as pods", () => {
      expect(owned("StatefulSet", "db")).toMatchObject({ workloadType: "DEPLOYMENT", workloadName: "db" });
      expect(only(NS + pod())).toMatchObject({ workloadType: "POD", workloadName: "web" });
    });
  });

  describe("status from readiness", () => {
    it("is HEALTHY when Running and Ready", () => {
      const status = "  phase: Running\n  podIP: 10.0.0.5\n  conditions: [{ type: Ready, status: 'True' }]";
      expect(only(NS + pod({ status })).status).toBe("HEALTHY");
    });

    it("is UNHEALTHY when Ready is False or missing from a listed set of conditions", () => {
      const notReady =
        "  phase: Running\n  podIP: 10.0.0.5\n  conditions: [{ type: Ready, status: 'False' }]";
      const noReady =
        "  phase: Running\n  podIP: 10.0.0.5\n  conditions: [{ type: PodScheduled, status: 'True' }]";
      expect(only(NS + pod({ status: notReady })).status).toBe("UNHEALTHY");
      expect(only(NS + pod({ status: noReady })).status).toBe("UNHEALTHY");
    });

    it("is UNHEALTHY when not Running, even if Ready", () => {
      const status = "  phase: Pending\n  podIP: 10.0.0.5\n  conditions: [{ type: Ready, status: 'True' }]";
      expect(only(NS + pod({ status })).status).toBe("UNHEALTHY");
    });

    it("takes a Running or phase-less pod without conditions as ready (hand-written manifests)", () => {
      expect(only(NS + pod({ status: "  phase: Running\n  podIP: 10.0.0.5" })).status).toBe("HEALTHY");
      expect(only(NS + pod({ status: "  podIP: 10.0.0.5" })).status).toBe("HEALTHY");
    });
  });

  describe("services", () => {
    const svc = (name: string, ports: string, selector = "{ app: web }", ns = "demo") => `
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns} }
spec:
  clusterIP: 10.96.0.10
  selector: ${selector}
  ports: ${ports}
`;
    const containers = `  containers:
    - name: app
      ports: [{ name: http, containerPort: 8080 }, { name: grpc, containerPort: 9090 }]`;

    it("resolves named target ports against the pod's containers", () => {
      const w = only(
        NS +
          pod({ spec: containers }) +
          svc("web", "[{ name: http, port: 80, targetPort: http }, { name: g, port: 90, targetPort: grpc }]"),
      );
      expect(w.services).toEqual({
        "demo/web.demo.svc.cluster.local": {
          ports: [
            { servicePort: 80, targetPort: 8080 },
            { servicePort: 90, targetPort: 9090 },
          ],
        },
      });
    });

    it("skips a named port the pod does not have", () => {
      const w = only(
        NS +
          pod({ spec: containers }) +
          svc("web", "[{ name: a, port: 80, targetPort: http }, { name: b, port: 81, targetPort: admin }]"),
      );
      expect(w.services["demo/web.demo.svc.cluster.local"]).toEqual({
        ports: [{ servicePort: 80, targetPort: 8080 }],
      });
    });

    it("uses numeric target ports as they are and the service port when absent", () => {
      const w = only(
        NS + pod() + svc("web", "[{ name: a, port: 80, targetPort: 8080 }, { name: b, port: 9000 }]"),
      );
      expect(w.services["demo/web.demo.svc.cluster.local"]).toEqual({
        ports: [
          { servicePort: 80, targetPort: 8080 },
          { servicePort: 9000, targetPort: 9000 },
        ],
      });
    });

    it("only joins services of the pod's namespace whose selector matches", () => {
      const text =
        NS +
        pod({ labels: "{ app: web, version: v1 }" }) +
        svc("all", "[{ port: 80 }]", "{ app: web }") +
        svc("v1", "[{ port: 80 }]", "{ app: web, version: v1 }") +
        svc("v2", "[{ port: 80 }]", "{ app: web, version: v2 }") +
        svc("none", "[{ port: 80 }]", "{}") +
        svc("elsewhere", "[{ port: 80 }]", "{ app: web }", "other");
      expect(Object.keys(only(text).services)).toEqual([
        "demo/all.demo.svc.cluster.local",
        "demo/v1.demo.svc.cluster.local",
      ]);
    });
  });

  it("takes the locality from the node's topology labels", () => {
    const node = `
---
apiVersion: v1
kind: Node
metadata: { name: node-1, labels: { topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: z1 } }
`;
    expect(only(NS + pod() + node).locality).toEqual({ region: "r1", zone: "z1", subzone: "" });
  });
});
