import type { Authorization, AuthorizationScope } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { PolicyIndex } from "./policy-index.js";

const auth = (namespace: string, name: string, scope: AuthorizationScope): Authorization => ({
  name,
  namespace,
  scope,
  action: "ALLOW",
  rules: [],
  dryRun: false,
});

const keys = (list: readonly Authorization[]) => list.map((a) => `${a.namespace}/${a.name}`);

describe("PolicyIndex", () => {
  const index = new PolicyIndex([
    auth("istio-system", "mesh", "GLOBAL"),
    auth("demo", "ns-wide", "NAMESPACE"),
    auth("other", "ns-wide", "NAMESPACE"),
    auth("demo", "web-only", "WORKLOAD_SELECTOR"),
    auth("istio-system", "istio_converted_static_strict", "WORKLOAD_SELECTOR"),
  ]);

  it.each([
    [
      "a workload naming nothing",
      { namespace: "demo", authorizationPolicies: [] },
      ["demo/ns-wide", "istio-system/mesh"],
    ],
    [
      "a workload naming selector policies",
      {
        namespace: "demo",
        authorizationPolicies: ["demo/web-only", "istio-system/istio_converted_static_strict"],
      },
      ["demo/ns-wide", "istio-system/mesh", "demo/web-only", "istio-system/istio_converted_static_strict"],
    ],
    [
      "another namespace",
      { namespace: "other", authorizationPolicies: [] },
      ["other/ns-wide", "istio-system/mesh"],
    ],
    [
      "a namespace without policies",
      { namespace: "empty", authorizationPolicies: [] },
      ["istio-system/mesh"],
    ],
    [
      "an unknown or repeated reference",
      { namespace: "empty", authorizationPolicies: ["demo/missing", "istio-system/mesh"] },
      ["istio-system/mesh"],
    ],
  ])("selects for %s", (_name, workload, expected) => {
    expect(keys(index.forWorkload(workload))).toEqual(expected);
  });

  it("caches per workload object and reports unknown references", () => {
    const wl = { namespace: "demo", authorizationPolicies: ["demo/missing"] };
    expect(index.forWorkload(wl)).toBe(index.forWorkload(wl));
    expect(index.unknownReferences(wl)).toEqual(["demo/missing"]);
  });

  it("keeps the last policy of a key, as an xDS update replaces it", () => {
    const later = { ...auth("demo", "p", "NAMESPACE"), action: "DENY" as const };
    const idx = new PolicyIndex([auth("demo", "p", "NAMESPACE"), later]);
    expect(idx.size).toBe(1);
    expect(idx.get("demo/p")).toBe(later);
  });
});
