// The conditions each translation asks for, without an API server: the cases the kubectl test in
// test/controlplane/kube-status.test.ts does not drive (CUSTOM, GatewayClass and missing targets,
// a condition of ours that must go, route parents that are not ours or no longer wanted).

import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { translate } from "../translate/index.js";
import { desiredStatus } from "./conditions.js";

const BASE = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: demo}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: demo}
spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: elsewhere, namespace: demo}
spec: {gatewayClassName: example.com/other, listeners: [{name: http, port: 80, protocol: HTTP}]}
`;

function policy(name: string, spec: string): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: demo}
spec: ${spec}
`;
}

function conditionsFor(text: string): Record<string, unknown[]> {
  const objects = parseAllDocuments(BASE + text).map((d) => d.toJS() as KubeObject);
  const targets = desiredStatus(objects, translate(objects));
  return Object.fromEntries(targets.map((t) => [t.object.metadata.name, t.conditions]));
}

describe("desiredStatus", () => {
  it("refuses on ztunnel a CUSTOM policy, which it does not enforce at all", () => {
    const out = conditionsFor(policy("ext", "{action: CUSTOM, provider: {name: authz}, rules: [{}]}"));
    expect(out.ext).toEqual([
      expect.objectContaining({ type: "ZtunnelAccepted", status: "False", reason: "UnsupportedValue" }),
    ]);
    expect(JSON.stringify(out.ext)).toContain("CUSTOM action");
  });

  it("names each waypoint target that does not resolve, and accepts the istio-waypoint class", () => {
    const out = conditionsFor(
      policy("missing", "{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: nope}]}") +
        policy(
          "ingress",
          "{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: ingress}]}",
        ) +
        policy(
          "all",
          "{targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}]}",
        ),
    );
    expect(out.missing).toEqual([
      {
        type: "WaypointAccepted",
        status: "False",
        reason: "TargetNotFound",
        message: "the Gateway demo/nope was not found",
      },
    ]);
    expect(out.ingress).toMatchObject([
      { status: "False", message: "Gateway demo/ingress is not a waypoint" },
    ]);
    expect(out.all).toMatchObject([{ status: "True", reason: "Accepted" }]);
  });

  it("asks to remove our condition from a Service that no longer uses a waypoint, and leaves others alone", () => {
    const svc = (name: string, conditions: unknown[]) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: demo}
spec: {selector: {app: ${name}}, ports: [{port: 80}]}
status: {conditions: ${JSON.stringify(conditions)}}
`;
    const bound = {
      type: "istio.io/WaypointBound",
      status: "True",
      reason: "WaypointAccepted",
      message: "x",
    };
    const foreign = { type: "example.com/Other", status: "True", reason: "R", message: "y" };
    const out = conditionsFor(svc("was-bound", [bound]) + svc("never", [foreign]));
    expect(out["was-bound"]).toEqual([]);
    expect("never" in out).toBe(false);
  });
});

describe("desiredStatus of routes", () => {
  // Gateway "elsewhere" is another controller's (class istio is ours: see the ingress case below).
  const route = (status: string, gateway = "elsewhere") => `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: demo}
spec:
  parentRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: ${gateway}}]
  rules: [{backendRefs: [{name: x, port: 80}]}]
status: ${status}
`;
  const targetsFor = (text: string) => {
    const objects = parseAllDocuments(BASE + text).map((d) => d.toJS() as KubeObject);
    return desiredStatus(objects, translate(objects)).filter((t) => t.object.kind === "HTTPRoute");
  };

  it("leaves a route attached only to another controller's Gateway alone", () => {
    const other = `{parents: [{parentRef: {name: elsewhere}, controllerName: example.com/other, conditions: []}]}`;
    expect(targetsFor(route(other))).toEqual([]);
  });

  it("removes our parent entry from a route no longer attached to anything we serve", () => {
    const ours = `{parents: [{parentRef: {group: "", kind: Service, name: gone}, controllerName: istio.io/gateway-controller, conditions: []}]}`;
    expect(targetsFor(route(ours)).map((t) => t.parents)).toEqual([[]]);
  });

  it("reports a route on a class-istio Gateway as ours: Accepted", () => {
    const [target] = targetsFor(route("{}", "ingress"));
    expect(target?.parents).toMatchObject([
      {
        controllerName: "istio.io/gateway-controller",
        parentRef: { kind: "Gateway", name: "ingress" },
        conditions: [
          { type: "Accepted", status: "True" },
          { type: "ResolvedRefs", status: "False", reason: "BackendNotFound" },
        ],
      },
    ]);
  });
});
