import type { GatewayAddress } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { type TranslateResult, translate } from "./index.js";

// ---- builders ----

type Labels = Record<string, string>;

function ns(name: string, labels: Labels = {}): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

function gateway(
  name: string,
  namespace: string,
  opts: { labels?: Labels; annotations?: Labels; className?: string; allowedRoutes?: unknown } = {},
): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace, labels: opts.labels ?? {}, annotations: opts.annotations ?? {} },
    spec: {
      gatewayClassName: opts.className ?? "istio-waypoint",
      listeners: [
        {
          name: "mesh",
          port: 15008,
          protocol: "HBONE",
          ...(opts.allowedRoutes ? { allowedRoutes: opts.allowedRoutes } : {}),
        },
      ],
    },
  };
}

let nextIp = 10;
function pod(name: string, namespace: string, opts: { labels?: Labels; sa?: string } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { app: name, ...opts.labels } },
    spec: { nodeName: "node-1", serviceAccountName: opts.sa ?? "default" },
    status: { phase: "Running", podIP: `10.0.0.${nextIp++}` },
  };
}

function svc(name: string, namespace: string, opts: { labels?: Labels; selector?: Labels } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels: opts.labels ?? {} },
    spec: {
      clusterIP: `10.96.0.${nextIp++}`,
      selector: opts.selector ?? { app: name },
      ports: [{ port: 80 }],
    },
  };
}

const at = (name: string, namespace: string): GatewayAddress => ({
  hostname: { namespace, hostname: `${name}.${namespace}.svc.cluster.local` },
  hboneMtlsPort: 15008,
});

function workloadWaypoint(result: TranslateResult, name: string): GatewayAddress | undefined {
  const w = result.workloads.find((x) => x.name === name);
  if (!w) throw new Error(`no workload ${name}`);
  return w.waypoint;
}

function serviceWaypoint(result: TranslateResult, name: string): GatewayAddress | undefined {
  const s = result.services.find((x) => x.name === name);
  if (!s) throw new Error(`no service ${name}`);
  return s.waypoint;
}

const USE = "istio.io/use-waypoint";
const USE_NS = "istio.io/use-waypoint-namespace";
const FOR = "istio.io/waypoint-for";
const FOR_SA = "istio.io/for-service-account";

describe("waypoint attachment", () => {
  it("a namespace waypoint (default: for services) takes the services, not pod-IP traffic", () => {
    const r = translate([
      ns("demo", { [USE]: "waypoint" }),
      gateway("waypoint", "demo"),
      pod("a", "demo"),
      svc("a", "demo"),
    ]);
    expect(serviceWaypoint(r, "a")).toEqual(at("waypoint", "demo"));
    expect(workloadWaypoint(r, "a")).toBeUndefined();
    expect(r.warnings).toEqual([]);
  });

  it("the object's own label wins over the namespace's, pod and service each for themselves", () => {
    const r = translate([
      ns("demo", { [USE]: "ns-wp" }),
      gateway("ns-wp", "demo", { labels: { [FOR]: "all" } }),
      gateway("svc-wp", "demo"),
      gateway("pod-wp", "demo", { labels: { [FOR]: "workload" } }),
      pod("a", "demo", { labels: { [USE]: "pod-wp" } }),
      pod("b", "demo"),
      svc("a", "demo", { labels: { [USE]: "svc-wp" } }),
      svc("b", "demo"),
    ]);
    expect(workloadWaypoint(r, "a")).toEqual(at("pod-wp", "demo"));
    expect(serviceWaypoint(r, "a")).toEqual(at("svc-wp", "demo"));
    expect(workloadWaypoint(r, "b")).toEqual(at("ns-wp", "demo"));
    expect(serviceWaypoint(r, "b")).toEqual(at("ns-wp", "demo"));
    expect(r.warnings).toEqual([]);
  });

  it("`none` on a pod or service opts it out of the namespace waypoint; on the namespace it sets nothing", () => {
    const r = translate([
      ns("demo", { [USE]: "wp" }),
      ns("quiet", { [USE]: "none" }),
      gateway("wp", "demo", { labels: { [FOR]: "all" } }),
      pod("a", "demo", { labels: { [USE]: "none" } }),
      svc("a", "demo", { labels: { [USE]: "none" } }),
      pod("q", "quiet"),
      svc("q", "quiet"),
    ]);
    expect(workloadWaypoint(r, "a")).toBeUndefined();
    expect(serviceWaypoint(r, "a")).toBeUndefined();
    expect(workloadWaypoint(r, "q")).toBeUndefined();
    expect(serviceWaypoint(r, "q")).toBeUndefined();
    expect(r.warnings).toEqual([]);
  });

  it("istio.io/use-waypoint-namespace picks the waypoint's namespace, read from the same object", () => {
    const all = { namespaces: { from: "All" } };
    const r = translate([
      ns("apps", { [USE]: "shared", [USE_NS]: "mesh" }),
      ns("mesh"),
      gateway("shared", "mesh", { allowedRoutes: all }),
      gateway("other", "mesh", { labels: { [FOR]: "workload" }, allowedRoutes: all }),
      svc("a", "apps"),
      pod("p", "apps", { labels: { [USE]: "other", [USE_NS]: "mesh" } }),
    ]);
    expect(serviceWaypoint(r, "a")).toEqual(at("shared", "mesh"));
    expect(workloadWaypoint(r, "p")).toEqual(at("other", "mesh"));
    expect(r.warnings).toEqual([]);
  });

  it("a waypoint in another namespace must admit the object's namespace (allowedRoutes), else fail closed", () => {
    const r = translate([
      ns("apps", { team: "a" }),
      ns("other"),
      ns("mesh"),
      gateway("same", "mesh"),
      gateway("selected", "mesh", {
        allowedRoutes: { namespaces: { from: "Selector", selector: { matchLabels: { team: "a" } } } },
      }),
      gateway("by-name", "mesh", {
        allowedRoutes: {
          namespaces: {
            from: "Selector",
            selector: {
              matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["apps"] }],
            },
          },
        },
      }),
      svc("denied", "apps", { labels: { [USE]: "same", [USE_NS]: "mesh" } }),
      svc("ok", "apps", { labels: { [USE]: "selected", [USE_NS]: "mesh" } }),
      svc("ok2", "apps", { labels: { [USE]: "by-name", [USE_NS]: "mesh" } }),
      svc("denied2", "other", { labels: { [USE]: "selected", [USE_NS]: "mesh" } }),
    ]);
    expect(serviceWaypoint(r, "ok")).toEqual(at("selected", "mesh"));
    expect(serviceWaypoint(r, "ok2")).toEqual(at("by-name", "mesh"));
    expect(serviceWaypoint(r, "denied")).toEqual(at("same", "mesh"));
    expect(serviceWaypoint(r, "denied2")).toEqual(at("selected", "mesh"));
    expect(r.warnings.map((w) => w.object).sort()).toEqual([
      "core/Service/apps/denied",
      "core/Service/other/denied2",
    ]);
    expect(r.warnings[0]!.message).toMatch(/does not admit namespace/);
  });

  it.each([
    ["service", true, false],
    ["workload", false, true],
    ["all", true, true],
    ["none", false, false],
  ])(
    "istio.io/waypoint-for: %s on a namespace waypoint: service %s, workload %s",
    (type, onService, onWorkload) => {
      const r = translate([
        ns("demo", { [USE]: "wp" }),
        gateway("wp", "demo", { labels: { [FOR]: type } }),
        pod("a", "demo"),
        svc("a", "demo"),
      ]);
      expect(serviceWaypoint(r, "a")).toEqual(onService ? at("wp", "demo") : undefined);
      expect(workloadWaypoint(r, "a")).toEqual(onWorkload ? at("wp", "demo") : undefined);
      expect(r.warnings).toEqual([]);
    },
  );

  it("an object that names a waypoint not for its kind of traffic is warned about and fails closed", () => {
    const r = translate([
      ns("demo"),
      gateway("svc-only", "demo"),
      gateway("pods-only", "demo", { labels: { [FOR]: "workload" } }),
      gateway("nothing", "demo", { labels: { [FOR]: "none" } }),
      pod("a", "demo", { labels: { [USE]: "svc-only" } }),
      svc("a", "demo", { labels: { [USE]: "pods-only" } }),
      svc("b", "demo", { labels: { [USE]: "nothing" } }),
    ]);
    expect(workloadWaypoint(r, "a")).toEqual(at("svc-only", "demo"));
    expect(serviceWaypoint(r, "a")).toEqual(at("pods-only", "demo"));
    expect(serviceWaypoint(r, "b")).toEqual(at("nothing", "demo"));
    expect(r.warnings).toEqual([
      {
        object: "core/Pod/demo/a",
        message: expect.stringMatching(
          /waypoint demo\/svc-only.*is for service traffic.*not workload traffic/,
        ),
      },
      {
        object: "core/Service/demo/a",
        message: expect.stringMatching(
          /waypoint demo\/pods-only.*is for workload traffic.*not service traffic/,
        ),
      },
      { object: "core/Service/demo/b", message: expect.stringMatching(/demo\/nothing.*is for none traffic/) },
    ]);
  });

  describe("per-service-account waypoints", () => {
    const base = [
      ns("demo", { [USE]: "ns-wp" }),
      gateway("ns-wp", "demo", { labels: { [FOR]: "all" } }),
      gateway("reviews-wp", "demo", { annotations: { [FOR_SA]: "reviews" } }),
      gateway("pinned", "demo", { labels: { [FOR]: "workload" } }),
    ];

    it("takes the workloads of its service account over the namespace waypoint; the pod's label still wins", () => {
      const r = translate([
        ...base,
        pod("r1", "demo", { sa: "reviews" }),
        pod("r2", "demo", { sa: "reviews", labels: { [USE]: "pinned" } }),
        pod("r3", "demo", { sa: "reviews", labels: { [USE]: "none" } }),
        pod("other", "demo", { sa: "ratings" }),
        svc("reviews", "demo", { selector: { app: "r1" } }),
      ]);
      expect(workloadWaypoint(r, "r1")).toEqual(at("reviews-wp", "demo"));
      expect(workloadWaypoint(r, "r2")).toEqual(at("pinned", "demo"));
      expect(workloadWaypoint(r, "r3")).toBeUndefined();
      expect(workloadWaypoint(r, "other")).toEqual(at("ns-wp", "demo"));
      // Services have no service account: the namespace waypoint still takes them.
      expect(serviceWaypoint(r, "reviews")).toEqual(at("ns-wp", "demo"));
      expect(r.warnings).toEqual([]);
    });

    it("only serves its own namespace, and the first of two for one service account wins", () => {
      const r = translate([
        ...base,
        ns("elsewhere"),
        gateway("b-second", "demo", { annotations: { [FOR_SA]: "reviews" } }),
        pod("r1", "demo", { sa: "reviews" }),
        pod("r9", "elsewhere", { sa: "reviews" }),
      ]);
      expect(workloadWaypoint(r, "r1")).toEqual(at("b-second", "demo"));
      expect(workloadWaypoint(r, "r9")).toBeUndefined();
      expect(r.warnings).toEqual([
        {
          object: "gateway.networking.k8s.io/Gateway/demo/reviews-wp",
          message:
            "waypoint demo/b-second already serves service account demo/reviews; this one is not used for it",
        },
      ]);
    });

    it("is ignored, with a warning, when its waypoint-for excludes workloads", () => {
      const r = translate([
        ns("demo"),
        gateway("wp", "demo", { labels: { [FOR]: "service" }, annotations: { [FOR_SA]: "reviews" } }),
        pod("r1", "demo", { sa: "reviews" }),
      ]);
      expect(workloadWaypoint(r, "r1")).toBeUndefined();
      expect(r.warnings[0]).toMatchObject({
        object: "gateway.networking.k8s.io/Gateway/demo/wp",
        message: expect.stringMatching(/has no effect/),
      });
    });
  });

  describe("a missing or wrong waypoint fails closed", () => {
    it("an object's own label: warning naming object and waypoint, address kept", () => {
      const r = translate([
        ns("demo"),
        gateway("ingress", "demo", { className: "istio" }),
        svc("a", "demo", { labels: { [USE]: "gone" } }),
        pod("a", "demo", { labels: { [USE]: "ingress" } }),
      ]);
      expect(serviceWaypoint(r, "a")).toEqual(at("gone", "demo"));
      expect(workloadWaypoint(r, "a")).toEqual(at("ingress", "demo"));
      expect(r.warnings).toEqual([
        {
          object: "core/Pod/demo/a",
          message: expect.stringMatching(
            /waypoint demo\/ingress, named by its istio.io\/use-waypoint label, is a Gateway of class "istio", not istio-waypoint; .*fail closed/,
          ),
        },
        {
          object: "core/Service/demo/a",
          message: expect.stringMatching(
            /waypoint demo\/gone, named by its istio.io\/use-waypoint label, does not exist; .*fail closed/,
          ),
        },
      ]);
    });

    it("a namespace's label: its services fail closed (Istio's default traffic type), pod IPs are left alone", () => {
      const r = translate([ns("demo", { [USE]: "gone" }), svc("a", "demo"), pod("a", "demo")]);
      expect(serviceWaypoint(r, "a")).toEqual(at("gone", "demo"));
      expect(workloadWaypoint(r, "a")).toBeUndefined();
      expect(r.warnings).toEqual([
        {
          object: "core/Service/demo/a",
          message: expect.stringMatching(
            /demo\/gone, named by the istio.io\/use-waypoint label of its namespace, does not exist/,
          ),
        },
      ]);
    });
  });

  it("a waypoint's own pod and service never point at a waypoint, whatever the labels say", () => {
    const instance = { "gateway.networking.k8s.io/gateway-name": "wp" };
    const r = translate([
      ns("demo", { [USE]: "wp" }),
      gateway("wp", "demo", { labels: { [FOR]: "all" } }),
      gateway("other", "demo", { labels: { [FOR]: "all" } }),
      pod("wp-waypoint", "demo", {
        labels: { ...instance, "istio.io/dataplane-mode": "none", [USE]: "other" },
      }),
      svc("wp", "demo", { selector: instance }),
      svc("managed", "demo", { labels: { "gateway.istio.io/managed": "istio.io-mesh-controller" } }),
      pod("app", "demo"),
    ]);
    expect(workloadWaypoint(r, "wp-waypoint")).toBeUndefined();
    expect(serviceWaypoint(r, "wp")).toBeUndefined();
    expect(serviceWaypoint(r, "managed")).toBeUndefined();
    expect(workloadWaypoint(r, "app")).toEqual(at("wp", "demo"));
    expect(r.workloads.find((w) => w.name === "wp-waypoint")!.tunnelProtocol).toBe("NONE");
  });

  it("warns about an unknown istio.io/waypoint-for value and lets the waypoint take nothing", () => {
    const r = translate([
      ns("demo", { [USE]: "wp" }),
      gateway("wp", "demo", { labels: { [FOR]: "services" } }),
      svc("a", "demo"),
    ]);
    expect(serviceWaypoint(r, "a")).toBeUndefined();
    expect(r.warnings).toEqual([
      {
        object: "gateway.networking.k8s.io/Gateway/demo/wp",
        message: expect.stringMatching(/"services" is not one of/),
      },
    ]);
  });

  it("hands the istio-waypoint Gateways, and only those, to the waypoints", () => {
    const r = translate([gateway("wp", "demo"), gateway("ingress", "demo", { className: "istio" })]);
    expect(r.waypointConfig.gateways.map((g) => g.metadata.name)).toEqual(["wp"]);
  });
});
