import { type Authorization, emptyMatch, type Match } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { translate } from "./index.js";

function run(text: string) {
  const result = translate(parseAllDocuments(text).map((d) => d.toJS() as KubeObject));
  return {
    ...result,
    policies: Object.fromEntries(
      result.workloads.map((w) => [`${w.namespace}/${w.name}`, w.authorizationPolicies]),
    ),
    byName: Object.fromEntries(result.authorizations.map((a) => [`${a.namespace}/${a.name}`, a])) as Record<
      string,
      Authorization
    >,
  };
}

function pa(name: string, ns: string, spec: string, created = ""): string {
  return `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns}${created ? `, creationTimestamp: "${created}"` : ""} }
spec:
${spec}
`;
}

function pod(name: string, ns: string, labels = "{ app: web }"): string {
  return `
---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: ${labels} }
status: { podIP: 10.0.${ns.length}.${name.length} }
`;
}

const STATIC = "istio-system/istio_converted_static_strict";
const m = (fields: Partial<Match>): Match => ({ ...emptyMatch(), ...fields });
const noIdentity = (fields: Partial<Match> = {}) => m({ notPrincipals: [{ presence: {} }], ...fields });
const PODS = pod("web", "demo") + pod("api", "demo", "{ app: api }") + pod("web", "other");

describe("PeerAuthentication → L4 policies", () => {
  it("sends nothing when there are no PeerAuthentications", () => {
    const r = run(PODS);
    expect(r.authorizations).toEqual([]);
    expect(Object.values(r.policies).flat()).toEqual([]);
  });

  it("mesh-wide STRICT: the static policy denies identity-less peers for every workload", () => {
    const r = run(pa("default", "istio-system", "  mtls: { mode: STRICT }") + PODS);
    expect(r.authorizations).toEqual([
      {
        name: "istio_converted_static_strict",
        namespace: "istio-system",
        scope: "WORKLOAD_SELECTOR",
        action: "DENY",
        rules: [{ clauses: [{ matches: [noIdentity()] }] }],
        dryRun: false,
      },
    ]);
    expect(r.policies).toEqual({ "demo/api": [STATIC], "demo/web": [STATIC], "other/web": [STATIC] });
  });

  it("namespace STRICT applies to its namespace only; PERMISSIVE there overrides a STRICT mesh", () => {
    expect(run(pa("default", "demo", "  mtls: { mode: STRICT }") + PODS).policies).toEqual({
      "demo/api": [STATIC],
      "demo/web": [STATIC],
      "other/web": [],
    });
    const r = run(
      pa("mesh", "istio-system", "  mtls: { mode: STRICT }") +
        pa("default", "demo", "  mtls: { mode: PERMISSIVE }") +
        PODS,
    );
    expect(r.policies).toEqual({ "demo/api": [], "demo/web": [], "other/web": [STATIC] });
    // The static policy is still sent: any PeerAuthentication makes it available, as in Istio.
    expect(Object.keys(r.byName)).toEqual([STATIC]);
  });

  it("UNSET inherits from the next level up", () => {
    const r = run(
      pa("mesh", "istio-system", "  mtls: { mode: STRICT }") +
        pa("default", "demo", "  mtls: { mode: UNSET }") +
        PODS,
    );
    expect(r.policies["demo/web"]).toEqual([STATIC]);
  });

  it("a workload policy beats the namespace policy, both ways", () => {
    const permissiveWeb = pa(
      "web",
      "demo",
      "  selector: { matchLabels: { app: web } }\n  mtls: { mode: PERMISSIVE }",
    );
    expect(
      run(pa("default", "demo", "  mtls: { mode: STRICT }") + permissiveWeb + PODS).policies,
    ).toMatchObject({
      "demo/web": [],
      "demo/api": [STATIC],
    });
    const strictWeb = pa(
      "web",
      "demo",
      "  selector: { matchLabels: { app: web } }\n  mtls: { mode: STRICT }",
    );
    expect(run(strictWeb + PODS).policies).toEqual({ "demo/web": [STATIC], "demo/api": [], "other/web": [] });
  });

  it("port-level PERMISSIVE under STRICT: deny identity-less peers except on that port", () => {
    const r = run(
      pa(
        "web",
        "demo",
        '  selector: { matchLabels: { app: web } }\n  mtls: { mode: STRICT }\n  portLevelMtls: { "8080": { mode: PERMISSIVE }, "9090": { mode: DISABLE }, "443": { mode: STRICT } }',
      ) + PODS,
    );
    expect(r.byName["demo/converted_peer_authentication_web"]).toEqual({
      name: "converted_peer_authentication_web",
      namespace: "demo",
      scope: "WORKLOAD_SELECTOR",
      action: "DENY",
      rules: [
        {
          clauses: [
            { matches: [noIdentity()] },
            { matches: [m({ notDestinationPorts: [8080] })] },
            { matches: [m({ notDestinationPorts: [9090] })] },
          ],
        },
      ],
      dryRun: false,
    });
    // The converted policy already carries STRICT, so the static one is not referenced too:
    // two DENY policies cannot express an exception.
    expect(r.policies).toEqual({
      "demo/web": ["demo/converted_peer_authentication_web"],
      "demo/api": [],
      "other/web": [],
    });
  });

  it("port-level PERMISSIVE with an UNSET workload mode inherits the namespace's STRICT", () => {
    const r = run(
      pa("default", "demo", "  mtls: { mode: STRICT }") +
        pa(
          "web",
          "demo",
          '  selector: { matchLabels: { app: web } }\n  portLevelMtls: { "8080": { mode: PERMISSIVE } }',
        ) +
        PODS,
    );
    expect(r.byName["demo/converted_peer_authentication_web"]!.rules).toEqual([
      { clauses: [{ matches: [noIdentity()] }, { matches: [m({ notDestinationPorts: [8080] })] }] },
    ]);
    expect(r.policies["demo/web"]).toEqual(["demo/converted_peer_authentication_web"]);
    expect(r.policies["demo/api"]).toEqual([STATIC]);
  });

  it("port-level STRICT under PERMISSIVE: deny identity-less peers on those ports only", () => {
    const r = run(
      pa(
        "web",
        "demo",
        '  selector: { matchLabels: { app: web } }\n  mtls: { mode: PERMISSIVE }\n  portLevelMtls: { "9090": { mode: STRICT }, "8443": { mode: STRICT } }',
      ) + PODS,
    );
    expect(r.byName["demo/converted_peer_authentication_web"]!.rules).toEqual([
      { clauses: [{ matches: [noIdentity({ destinationPorts: [8443] })] }] },
      { clauses: [{ matches: [noIdentity({ destinationPorts: [9090] })] }] },
    ]);
    expect(r.policies["demo/web"]).toEqual(["demo/converted_peer_authentication_web"]);
  });

  it("port-level settings that agree with the workload mode need no converted policy", () => {
    const r = run(
      pa(
        "web",
        "demo",
        '  selector: { matchLabels: { app: web } }\n  mtls: { mode: STRICT }\n  portLevelMtls: { "80": { mode: STRICT } }',
      ) + PODS,
    );
    expect(Object.keys(r.byName)).toEqual([STATIC]);
    expect(r.policies["demo/web"]).toEqual([STATIC]);
  });

  it("the oldest matching workload policy wins", () => {
    const r = run(
      pa(
        "young",
        "demo",
        "  selector: { matchLabels: { app: web } }\n  mtls: { mode: STRICT }",
        "2024-05-01T00:00:00Z",
      ) +
        pa(
          "old",
          "demo",
          "  selector: { matchLabels: { app: web } }\n  mtls: { mode: PERMISSIVE }",
          "2023-01-01T00:00:00Z",
        ) +
        PODS,
    );
    expect(r.policies["demo/web"]).toEqual([]);
  });

  it("ignores root-namespace selector policies, with a warning", () => {
    const r = run(
      pa("sel", "istio-system", "  selector: { matchLabels: { app: web } }\n  mtls: { mode: STRICT }") + PODS,
    );
    expect(r.policies["demo/web"]).toEqual([]);
    expect(r.warnings[0]).toMatchObject({ object: "security.istio.io/PeerAuthentication/istio-system/sel" });
  });

  it("merges with AuthorizationPolicy references in one sorted list", () => {
    const ap = `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-web, namespace: demo }
spec: { selector: { matchLabels: { app: web } }, rules: [{}] }
`;
    const r = run(pa("default", "istio-system", "  mtls: { mode: STRICT }") + ap + PODS);
    expect(r.policies["demo/web"]).toEqual(["demo/allow-web", STATIC]);
  });
});
