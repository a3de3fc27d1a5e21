// The waypoint's L7 config on the control plane's Delta ADS stream, under Ambient's own type:
// every VirtualService, DestinationRule, RequestAuthentication, targetRefs AuthorizationPolicy and
// waypoint Gateway, plus what ingress gateways read (class-istio Gateways, the selector policies of
// their namespaces); edits re-send only the edited object; a ztunnel's wildcard Address and
// Authorization subscriptions never see them. Also the waypoint attachment ztunnel receives.

import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  type DeltaDiscoveryResponse,
  decodeAddress,
  decodeL7Resource,
  L7_RESOURCE_TYPE_URL,
  nodeToWire,
} from "@ambient/core";
import { RawDeltaStream } from "@ambient/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import {
  docs,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  service,
  startControlPlane,
} from "../utils/index.js";

const ZTUNNEL = nodeToWire({ id: "ztunnel~127.0.0.1~node-1", cluster: "Kubernetes", metadata: {} });
const WAYPOINT = nodeToWire({
  id: "waypoint~127.10.1.50~waypoint.demo",
  cluster: "Kubernetes",
  metadata: {},
});

const virtualService = (weight: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a, namespace: demo }
spec:
  hosts: [a.demo.svc.cluster.local]
  http:
    - route:
        - destination: { host: a.demo.svc.cluster.local, subset: v1 }
          weight: ${weight}
        - destination: { host: a.demo.svc.cluster.local, subset: v2 }
          weight: ${100 - weight}
`;

const files = {
  "00-cluster.yaml": docs(
    namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
    node("node-1", "127.10.1.1"),
  ),
  "10-a.yaml": docs(
    pod({ name: "a", namespace: "demo", node: "node-1", ip: "127.10.1.10", labels: { app: "a" } }),
    service({
      name: "a",
      namespace: "demo",
      vip: "127.10.100.1",
      selector: { app: "a" },
      ports: [{ port: 80 }],
    }),
  ),
  "20-gateways.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: demo
  labels: { istio.io/waypoint-for: service }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: ingress, namespace: demo }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP }]
`,
  "30-vs.yaml": virtualService(90),
  "31-dr.yaml": `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: a, namespace: demo }
spec:
  host: a.demo.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`,
  "40-policies.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: l7-get-only, namespace: demo }
spec:
  targetRefs: [{ kind: Service, group: "", name: a }]
  rules: [{ to: [{ operation: { methods: [GET] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: l4-allow-all, namespace: demo }
spec:
  selector: { matchLabels: { app: a } }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: demo }
spec:
  targetRefs: [{ kind: Service, group: "", name: a }]
  jwtRules: [{ issuer: "https://issuer.example", jwksUri: "https://issuer.example/jwks" }]
`,
};

const names = (r: DeltaDiscoveryResponse) => r.resources.map((x) => x.name).sort();

describe("waypoint config over Delta ADS", () => {
  let env: RunningControlPlane | undefined;
  const streams: RawDeltaStream[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await env?.stop();
    env = undefined;
  });

  function open(): RawDeltaStream {
    const s = new RawDeltaStream(env!.cp.address);
    streams.push(s);
    return s;
  }

  const ack = (s: RawDeltaStream, r: DeltaDiscoveryResponse) =>
    s.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });

  it("publishes every L7 object and waypoint Gateway as written, and re-sends only what an edit touches", async () => {
    env = await startControlPlane(files);
    const s = open();
    s.send({ node: WAYPOINT, typeUrl: L7_RESOURCE_TYPE_URL });
    const first = await s.next();
    expect(first.typeUrl).toBe(L7_RESOURCE_TYPE_URL);
    expect(names(first)).toEqual([
      // The selector policy goes to the ingress gateway of its namespace (a gateway pod is not
      // captured by ztunnel); a waypoint applies only targetRefs policies.
      "AuthorizationPolicy/demo/l4-allow-all",
      "AuthorizationPolicy/demo/l7-get-only",
      "DestinationRule/demo/a",
      // The class-istio Gateway is an ingress gateway's config.
      "Gateway/demo/ingress",
      "Gateway/demo/waypoint",
      // Pod labels ride along: DestinationRule subsets select endpoints by them.
      "Pod/demo/a",
      "RequestAuthentication/demo/jwt",
      "VirtualService/demo/a",
    ]);
    const byName = new Map(first.resources.map((r) => [r.name, decodeL7Resource(r.resource!.value, r.name)]));
    expect(byName.get("Gateway/demo/waypoint")).toEqual({
      kind: "Gateway",
      apiVersion: "gateway.networking.k8s.io/v1",
      namespace: "demo",
      name: "waypoint",
      spec: {
        gatewayClassName: "istio-waypoint",
        listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
      },
      labels: { "istio.io/waypoint-for": "service" },
      annotations: {},
    });
    expect(byName.get("AuthorizationPolicy/demo/l7-get-only")!.spec).toEqual({
      targetRefs: [{ kind: "Service", group: "", name: "a" }],
      rules: [{ to: [{ operation: { methods: ["GET"] } }] }],
    });
    expect(byName.get("VirtualService/demo/a")!.apiVersion).toBe("networking.istio.io/v1");
    await ack(s, first);

    // Edit: only the VirtualService changes.
    await env.config.write("30-vs.yaml", virtualService(50));
    const edit = await s.next();
    expect(names(edit)).toEqual(["VirtualService/demo/a"]);
    expect(edit.removedResources).toEqual([]);
    const spec = decodeL7Resource(edit.resources[0]!.resource!.value).spec as {
      http: { route: { weight: number }[] }[];
    };
    expect(spec.http[0]!.route.map((r) => r.weight)).toEqual([50, 50]);
    await ack(s, edit);

    // Remove: the DestinationRule goes away alone.
    await env.config.remove("31-dr.yaml");
    const removal = await s.next();
    expect(removal.resources).toEqual([]);
    expect(removal.removedResources).toEqual(["DestinationRule/demo/a"]);
    await ack(s, removal);

    // A pod label change re-sends that pod's labels alone (DestinationRule subsets need them).
    await env.config.write(
      "10-a.yaml",
      docs(
        pod({
          name: "a",
          namespace: "demo",
          node: "node-1",
          ip: "127.10.1.10",
          labels: { app: "a", version: "v2" },
        }),
        service({
          name: "a",
          namespace: "demo",
          vip: "127.10.100.1",
          selector: { app: "a" },
          ports: [{ port: 80 }],
        }),
      ),
    );
    const labels = await s.next();
    expect(names(labels)).toEqual(["Pod/demo/a"]);
    expect(decodeL7Resource(labels.resources[0]!.resource!.value).labels).toEqual({
      app: "a",
      version: "v2",
    });
    await ack(s, labels);
  });

  it("a ztunnel's wildcard Address and Authorization subscriptions are untouched by the L7 type", async () => {
    env = await startControlPlane(files);
    const s = open();
    s.send({ node: ZTUNNEL, typeUrl: ADDRESS_TYPE_URL });
    const addresses = await s.next();
    expect(addresses.typeUrl).toBe(ADDRESS_TYPE_URL);
    expect(names(addresses)).toEqual(["Kubernetes//Pod/demo/a", "demo/a.demo.svc.cluster.local"]);
    await ack(s, addresses);
    s.send({ typeUrl: AUTHORIZATION_TYPE_URL });
    const authorizations = await s.next();
    expect(authorizations.typeUrl).toBe(AUTHORIZATION_TYPE_URL);
    // The targetRefs policy is the waypoint's: ztunnel gets only the selector one.
    expect(names(authorizations)).toEqual(["demo/l4-allow-all"]);
    await ack(s, authorizations);

    // The namespace waypoint (for services) is on the Service, not on the pod.
    const svc = decodeAddress(addresses.resources.find((r) => r.name.startsWith("demo/"))!.resource!.value);
    expect(svc.service?.waypoint).toEqual({
      hostname: { namespace: "demo", hostname: "waypoint.demo.svc.cluster.local" },
      hboneMtlsPort: 15008,
    });
    const workload = decodeAddress(
      addresses.resources.find((r) => r.name.startsWith("Kubernetes//"))!.resource!.value,
    );
    expect(workload.workload?.waypoint).toBeUndefined();

    // L7 edits reach no one on this stream.
    await env.config.write("30-vs.yaml", virtualService(10));
    await env.cp.reload();
    await s.expectSilence(400);
    const subscribed = env.cp.clients()[0]!.subscriptions.map((x) => x.typeUrl);
    expect(subscribed.sort()).toEqual([ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL].sort());
  });

  it("a Service naming a waypoint that does not exist fails closed, with a warning naming both", async () => {
    env = await startControlPlane({
      ...files,
      "10-a.yaml": docs(
        pod({ name: "a", namespace: "demo", node: "node-1", ip: "127.10.1.10", labels: { app: "a" } }),
        service({
          name: "a",
          namespace: "demo",
          vip: "127.10.100.1",
          selector: { app: "a" },
          ports: [{ port: 80 }],
        }).replace("metadata:\n", "metadata:\n  labels: { istio.io/use-waypoint: gone }\n"),
      ),
    });
    const svc = env.cp.snapshot.services.find((x) => x.name === "a")!;
    expect(svc.waypoint?.hostname).toEqual({ namespace: "demo", hostname: "gone.demo.svc.cluster.local" });
    const warning = env.logs.find((l) => l["object"] === "core/Service/demo/a");
    expect(warning?.["msg"]).toMatch(
      /waypoint demo\/gone, named by its istio.io\/use-waypoint label, does not exist/,
    );
  });
});
