// The incremental translator against the one definition: random meshes, random edit sequences,
// and after every edit the warm Translator's result (every output field, warnings and their order
// included) must equal a fresh full translation of the same objects. Plus the point of it all: an
// edit recomputes only what it reaches.

import { type KubeObject, objectKey } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { PodIndex } from "../ca/node-authorizer.js";
import { desiredStatus } from "../status/conditions.js";
import { StatusTracker } from "../status/tracker.js";
import { validateObject } from "../validate/index.js";
import { type TranslateResult, type TranslationChange, Translator, translate } from "./index.js";

/** A small deterministic generator (LCG), so a failing seed reproduces. */
class Random {
  constructor(private state: number) {}
  next(): number {
    this.state = (this.state * 1103515245 + 12345) % 2 ** 31;
    return this.state / 2 ** 31;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const NAMESPACES = ["istio-system", "a", "b", "c"];
const APPS = ["web", "api", "db"];
const SERVICE_ACCOUNTS = ["default", "web", "api"];
const NODES = ["node-1", "node-2", "node-3"];

type Labels = Record<string, string>;

/** Random objects of every kind the translation reads, in the shapes (and corners) users write. */
class MeshGenerator {
  constructor(private readonly r: Random) {}

  namespace(name: string): KubeObject {
    const labels: Labels = {};
    if (this.r.chance(0.6)) labels["istio.io/dataplane-mode"] = "ambient";
    if (this.r.chance(0.25)) labels["istio.io/use-waypoint"] = this.r.pick(["waypoint", "none", "missing"]);
    if (this.r.chance(0.15)) labels["topology.istio.io/network"] = "net-2";
    if (this.r.chance(0.3)) labels.team = this.r.pick(["x", "y"]);
    return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
  }

  node(name: string): KubeObject {
    const labels: Labels = {};
    if (this.r.chance(0.5)) labels["topology.kubernetes.io/zone"] = this.r.pick(["z1", "z2"]);
    return { apiVersion: "v1", kind: "Node", metadata: { name, labels } };
  }

  pod(name: string, namespace: string): KubeObject {
    const r = this.r;
    const labels: Labels = { app: r.pick(APPS) };
    if (r.chance(0.5)) labels.version = r.pick(["v1", "v2"]);
    if (r.chance(0.15)) labels["istio.io/use-waypoint"] = r.pick(["waypoint", "none", "other"]);
    if (r.chance(0.1)) labels["istio.io/dataplane-mode"] = r.pick(["ambient", "none"]);
    if (r.chance(0.05)) labels["gateway.networking.k8s.io/gateway-name"] = "waypoint";
    if (r.chance(0.1)) labels.istio = "ingressgateway";
    const ports = r.chance(0.7) ? [{ name: "http", containerPort: r.pick([8080, 9090]) }] : [];
    const phase = r.chance(0.9) ? "Running" : r.pick(["Pending", "Succeeded"]);
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace,
        labels,
        uid: `uid-${r.int(3)}`,
        ...(r.chance(0.5)
          ? {
              ownerReferences: [
                {
                  apiVersion: "apps/v1",
                  kind: "ReplicaSet",
                  name: `${labels.app}-7d4f9c`,
                  uid: "u",
                  controller: true,
                },
              ],
            }
          : {}),
      },
      spec: {
        nodeName: r.pick(NODES),
        serviceAccountName: r.pick(SERVICE_ACCOUNTS),
        containers: [{ name: "app", image: "app", ports }],
      },
      status: {
        phase,
        ...(r.chance(0.95) ? { podIP: `10.1.${r.int(4)}.${r.int(250) + 1}` } : {}),
        ...(r.chance(0.5) ? { conditions: [{ type: "Ready", status: r.pick(["True", "False"]) }] } : {}),
      },
    };
  }

  service(name: string, namespace: string): KubeObject {
    const r = this.r;
    const labels: Labels = {};
    if (r.chance(0.2)) labels["istio.io/use-waypoint"] = r.pick(["waypoint", "none", "missing"]);
    const selector: Labels = r.chance(0.85) ? { app: r.pick(APPS) } : {};
    if (r.chance(0.2)) selector.version = "v1";
    const annotations: Labels = r.chance(0.15)
      ? { "networking.istio.io/traffic-distribution": r.pick(["PreferClose", "Nowhere"]) }
      : {};
    return {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace, labels, annotations },
      ...this.heldConditions(),
      spec: {
        clusterIP: `10.96.${r.int(4)}.${r.int(250) + 1}`,
        selector,
        ports: [
          { name: r.pick(["http", "tcp"]), port: 80, targetPort: r.pick<string | number>(["http", 8080]) },
        ],
      },
    };
  }

  authorizationPolicy(name: string, namespace: string): KubeObject {
    const r = this.r;
    const spec: Record<string, unknown> = {};
    const shape = r.int(4);
    if (shape === 0) spec.selector = { matchLabels: { app: r.pick(APPS) } };
    if (shape === 1) spec.targetRefs = [this.targetRef()];
    spec.action = r.pick(["ALLOW", "DENY", "AUDIT"]);
    const from = [{ source: { principals: [`cluster.local/ns/${r.pick(NAMESPACES)}/sa/web`] } }];
    const to = [{ operation: r.chance(0.3) ? { methods: ["GET"] } : { ports: ["8080"] } }];
    spec.rules = r.chance(0.2) ? [{}] : [{ from, to }];
    return {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name, namespace },
      spec,
      ...this.heldConditions(),
    };
  }

  /** What a waypoint policy attaches to: Services here or elsewhere, Gateways, a GatewayClass. */
  targetRef(): Record<string, string> {
    const r = this.r;
    switch (r.int(4)) {
      case 0:
        return {
          group: "",
          kind: "Service",
          name: r.pick(["s0", "s1", "se0"]),
          namespace: r.pick(NAMESPACES),
        };
      case 1:
        return { group: "gateway.networking.k8s.io", kind: "Gateway", name: r.pick(["waypoint", "other"]) };
      case 2:
        return { group: "gateway.networking.k8s.io", kind: "GatewayClass", name: "istio-waypoint" };
      default:
        return { group: "", kind: "Service", name: r.pick(["s0", "s1"]) };
    }
  }

  /** Sometimes a status that already carries a condition of ours (written by an earlier run). */
  heldConditions(): { status?: Record<string, unknown> } {
    if (!this.r.chance(0.2)) return {};
    const type = this.r.pick(["istio.io/WaypointBound", "ZtunnelAccepted", "WaypointAccepted"]);
    return { status: { conditions: [{ type, status: "True", reason: "Accepted", message: "old" }] } };
  }

  peerAuthentication(name: string, namespace: string): KubeObject {
    const r = this.r;
    const spec: Record<string, unknown> = {
      mtls: { mode: r.pick(["STRICT", "PERMISSIVE", "UNSET"]) },
    };
    if (r.chance(0.4)) {
      spec.selector = { matchLabels: { app: r.pick(APPS) } };
      if (r.chance(0.6))
        spec.portLevelMtls = { "8080": { mode: r.pick(["STRICT", "PERMISSIVE", "DISABLE"]) } };
    }
    return {
      apiVersion: "security.istio.io/v1",
      kind: "PeerAuthentication",
      metadata: { name, namespace, creationTimestamp: `2026-01-0${1 + r.int(3)}T00:00:00Z` },
      spec,
    };
  }

  gateway(name: string, namespace: string): KubeObject {
    const r = this.r;
    const labels: Labels = {};
    if (r.chance(0.5)) labels["istio.io/waypoint-for"] = r.pick(["service", "workload", "all", "bogus"]);
    const annotations: Labels = r.chance(0.3)
      ? { "istio.io/for-service-account": r.pick(SERVICE_ACCOUNTS) }
      : {};
    const allowedRoutes = r.pick([
      undefined,
      { namespaces: { from: "All" } },
      { namespaces: { from: "Selector", selector: { matchLabels: { team: "x" } } } },
    ]);
    return {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name, namespace, labels, annotations },
      spec: {
        gatewayClassName: r.chance(0.85) ? "istio-waypoint" : r.pick(["other", "istio"]),
        listeners: [
          { name: "mesh", port: 15008, protocol: "HBONE", ...(allowedRoutes ? { allowedRoutes } : {}) },
          ...(r.chance(0.3)
            ? [
                {
                  name: "https",
                  port: 443,
                  protocol: "HTTPS",
                  tls: { certificateRefs: [{ name: r.pick(["cert", "missing"]) }] },
                },
              ]
            : []),
        ],
      },
    };
  }

  /** Istio's own Gateway: its pods (selector) may be in any namespace; it names a TLS Secret. */
  istioGateway(name: string, namespace: string): KubeObject {
    const r = this.r;
    return {
      apiVersion: "networking.istio.io/v1",
      kind: "Gateway",
      metadata: { name, namespace },
      spec: {
        selector: r.chance(0.8) ? { istio: "ingressgateway" } : { app: r.pick(APPS) },
        servers: [
          {
            port: { number: 443, name: "https", protocol: "HTTPS" },
            hosts: ["*"],
            tls: { mode: "SIMPLE", credentialName: r.pick(["cert", "missing"]) },
          },
        ],
      },
    };
  }

  secret(name: string, namespace: string): KubeObject {
    const r = this.r;
    return {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace },
      type: r.pick(["kubernetes.io/tls", "Opaque"]),
      data: { "tls.crt": r.pick(["YQ==", "Yg=="]), "tls.key": "YQ==" },
    } as KubeObject;
  }

  virtualService(name: string, namespace: string): KubeObject {
    return {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name, namespace },
      spec: {
        hosts: [`s0.${namespace}.svc.cluster.local`],
        http: [{ route: [{ destination: { host: "s0" } }] }],
      },
    };
  }

  httpRoute(name: string, namespace: string): KubeObject {
    const r = this.r;
    const parent =
      r.next() < 0.7
        ? { group: "", kind: "Service", name: `s${r.int(3)}` }
        : { group: "gateway.networking.k8s.io", kind: "Gateway", name: r.pick(["waypoint", "other"]) };
    return {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: r.next() < 0.8 ? "HTTPRoute" : "GRPCRoute",
      metadata: { name, namespace },
      spec: {
        parentRefs: [parent],
        rules: [{ backendRefs: [{ name: `s${r.int(4)}`, port: 80, weight: r.int(3) }] }],
      },
    };
  }

  serviceEntry(name: string, namespace: string): KubeObject {
    const r = this.r;
    const labels: Labels = {};
    if (r.chance(0.3)) labels["istio.io/use-waypoint"] = r.pick(["waypoint", "none", "missing"]);
    const resolution = r.pick(["NONE", "STATIC", "DNS"]);
    const spec: Record<string, unknown> = {
      hosts: [`${name}.example.com`, ...(r.chance(0.3) ? ["api.example.com"] : [])],
      ports: [
        { number: 443, name: "https", protocol: "TLS", ...(r.chance(0.3) ? { targetPort: 8443 } : {}) },
      ],
      resolution,
      location: "MESH_EXTERNAL",
    };
    if (r.chance(0.6)) spec.addresses = [`240.240.${r.int(3)}.${r.int(250) + 1}`];
    if (resolution === "STATIC" || (resolution === "DNS" && r.chance(0.5))) {
      if (r.chance(0.4)) spec.workloadSelector = { labels: { app: r.pick(APPS) } };
      else
        spec.endpoints = [
          {
            address: resolution === "DNS" ? "origin.example.net" : `192.0.2.${r.int(250) + 1}`,
            ports: { https: 9443 },
          },
        ];
    }
    return {
      apiVersion: "networking.istio.io/v1",
      kind: "ServiceEntry",
      metadata: { name, namespace, labels },
      ...this.heldConditions(),
      spec,
    };
  }

  workloadEntry(name: string, namespace: string): KubeObject {
    const r = this.r;
    const labels: Labels = { app: r.pick(APPS) };
    if (r.chance(0.2)) labels["istio.io/use-waypoint"] = r.pick(["waypoint", "none"]);
    return {
      apiVersion: "networking.istio.io/v1",
      kind: "WorkloadEntry",
      metadata: { name, namespace, labels },
      spec: {
        address: r.chance(0.8) ? `10.9.${r.int(2)}.${r.int(250) + 1}` : "vm.example.net",
        serviceAccount: r.pick(SERVICE_ACCOUNTS),
        ...(r.chance(0.5) ? { labels: { version: r.pick(["v1", "v2"]) } } : {}),
        ...(r.chance(0.5) ? { ports: { http: 8081 } } : {}),
      },
    };
  }

  /** A random object of a random kind, named from a small pool so edits hit existing objects. */
  any(): KubeObject {
    const r = this.r;
    const ns = r.pick(NAMESPACES);
    switch (r.int(15)) {
      case 0:
        return this.namespace(ns);
      case 1:
        return this.node(r.pick(NODES));
      case 2:
        return this.service(`s${r.int(3)}`, ns);
      case 3:
        return this.authorizationPolicy(`p${r.int(3)}`, ns);
      case 4:
        return this.peerAuthentication(`pa${r.int(2)}`, ns);
      case 5:
        return this.gateway(r.pick(["waypoint", "other"]), ns);
      case 6:
        return this.virtualService(`vs${r.int(2)}`, ns);
      case 7:
        return this.serviceEntry(`se${r.int(2)}`, ns);
      case 8:
        return this.workloadEntry(`we${r.int(2)}`, ns);
      case 9:
        return this.httpRoute(`route${r.int(2)}`, ns);
      case 10:
        return this.istioGateway(r.pick(["public", "waypoint"]), ns);
      case 11:
        return this.secret("cert", ns);
      default:
        return this.pod(`pod-${r.int(8)}`, ns);
    }
  }
}

/** Only what validation lets through reaches translation in the control plane. */
function valid(obj: KubeObject): KubeObject | undefined {
  const result = validateObject(structuredClone(obj));
  return result.ok ? result.object : undefined;
}

const keyOf = (o: KubeObject) => `${o.apiVersion}|${o.kind}|${o.metadata.namespace ?? ""}|${o.metadata.name}`;

/** Bytes as hex, so two results compare exactly. */
function serialize(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
}

/**
 * What follows the translator's change in Kubernetes mode (the CA's pod index, the desired status
 * conditions), checked against the same state rebuilt from all objects.
 */
class Consumers {
  private readonly pods = new PodIndex("td.local");
  private readonly status = new StatusTracker();
  private targets: ReturnType<StatusTracker["update"]> = [];

  follow(change: TranslationChange, result: TranslateResult): void {
    this.pods.update(change);
    this.targets = this.status.update(change, result);
  }

  expectFullRebuild(objects: KubeObject[], fresh: TranslateResult, where: string): void {
    const rebuilt = new PodIndex("td.local");
    const byKey = new Map(objects.map((o) => [objectKey(o), o]));
    rebuilt.update({ generation: 1, keys: undefined, scope: FULL, objects: byKey });
    for (const ns of NAMESPACES) {
      for (let i = 0; i < 8; i++) {
        expect(this.pods.pod(ns, `pod-${i}`), `${where}: pod ${ns}/pod-${i}`).toEqual(
          rebuilt.pod(ns, `pod-${i}`),
        );
      }
      for (const node of NODES) {
        for (const sa of SERVICE_ACCOUNTS) {
          const id = `spiffe://td.local/ns/${ns}/sa/${sa}`;
          expect(this.pods.runsOn(node, id), `${where}: ${id} on ${node}`).toBe(rebuilt.runsOn(node, id));
        }
      }
    }
    const byObject = (
      targets: readonly { object: KubeObject; conditions: unknown[]; parents?: unknown[] }[],
    ) =>
      Object.fromEntries(
        targets
          .map((t) => [objectKey(t.object), [t.object, t.conditions, t.parents]] as const)
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    expect(byObject(this.targets), `${where}: status targets`).toEqual(
      byObject(desiredStatus(objects, fresh)),
    );
  }
}

const FULL = {
  all: true,
  keys: new Set<string>(),
  podNamespaces: new Set<string>(),
  serviceNamespaces: new Set<string>(),
  nodes: new Set<string>(),
};

describe("incremental translation", () => {
  it.each([1, 2, 3, 4, 5, 6])("equals a fresh full translation after every random edit (seed %i)", (seed) => {
    const r = new Random(seed);
    const gen = new MeshGenerator(r);
    const objects = new Map<string, KubeObject>();
    const put = (o: KubeObject | undefined) => o && objects.set(keyOf(o), o);
    for (const ns of NAMESPACES) put(valid(gen.namespace(ns)));
    for (const node of NODES) put(valid(gen.node(node)));
    for (let i = 0; i < 40; i++) put(valid(gen.any()));

    const translator = new Translator({ clusterId: "c1", trustDomain: "td.local" });
    const consumers = new Consumers();
    let partial = 0;
    for (let step = 0; step < 150; step++) {
      const edits = 1 + r.int(3);
      for (let e = 0; e < edits; e++) {
        const roll = r.next();
        if (roll < 0.2 && objects.size > 0) objects.delete(r.pick([...objects.keys()]));
        else if (roll < 0.3 && objects.size > 0) {
          // The same content as a new object (a file re-read): no change at all.
          const key = r.pick([...objects.keys()]);
          objects.set(key, structuredClone(objects.get(key)!));
        } else put(valid(gen.any()));
      }
      const input = [...objects.values()];
      const incremental = translator.translate(input);
      if (!translator.stats.full) partial++;
      const fresh = translate(input, { clusterId: "c1", trustDomain: "td.local" });
      expect(serialize(incremental), `seed ${seed}, step ${step}`).toBe(serialize(fresh));
      consumers.follow(translator.change!, incremental);
      consumers.expectFullRebuild(input, fresh, `seed ${seed}, step ${step}`);
    }
    // The comparison means something only if most steps actually took the incremental path.
    expect(partial).toBeGreaterThan(50);
  });

  it("a pod edit recomputes that workload only; a service edit its namespace's workloads", () => {
    const gen = new MeshGenerator(new Random(7));
    const objects: KubeObject[] = [];
    for (const ns of NAMESPACES) objects.push(gen.namespace(ns));
    for (let i = 0; i < 20; i++) objects.push(gen.pod(`pod-${i}`, NAMESPACES[1 + (i % 3)]!));
    objects.push(gen.service("s0", "a"), gen.service("s0", "b"));
    const translator = new Translator();
    translator.translate(objects);
    expect(translator.stats).toMatchObject({ full: true, pods: 20, services: 2 });

    const edited = objects.map((o) =>
      o.kind === "Pod" && o.metadata.name === "pod-4"
        ? { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, version: "v9" } } }
        : structuredClone(o),
    );
    const afterPod = translator.translate(edited);
    expect(translator.stats).toEqual({ full: false, pods: 1, services: 0, policies: 0 });
    expect(afterPod.workloads.find((w) => w.name === "pod-4")?.canonicalRevision).toBe("v9");

    const withService = [...edited.filter((o) => !(o.kind === "Service" && o.metadata.namespace === "a"))];
    translator.translate(withService);
    // Namespace a holds pods 0, 3, 6, …: 7 of the 20.
    expect(translator.stats).toEqual({ full: false, pods: 7, services: 0, policies: 0 });
  });

  it("reports nothing recomputed when nothing changed", () => {
    const gen = new MeshGenerator(new Random(9));
    const objects = [gen.namespace("a"), gen.pod("p", "a"), gen.service("s", "a")];
    const translator = new Translator();
    const first = translator.translate(objects);
    const second = translator.translate(objects.map((o) => structuredClone(o)));
    expect(translator.stats).toEqual({ full: false, pods: 0, services: 0, policies: 0 });
    expect(second.workloads[0]).toBe(first.workloads[0]);
  });
});
