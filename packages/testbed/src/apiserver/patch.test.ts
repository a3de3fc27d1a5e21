// Patch types: strategic merge on the lists kubectl and our components patch (containers, ports,
// conditions), its directives, JSON patch, merge patch, and 415 for what a kind does not accept.

import { findCode } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { ApiErrorCode, toStatus } from "./errors.js";
import { jsonPatch, mergePatch, patchKindOf } from "./patch.js";
import { strategicMerge } from "./strategic.js";

const podSpec = {
  spec: {
    containers: [
      {
        name: "app",
        image: "app:1",
        ports: [{ containerPort: 8080, protocol: "TCP" }],
        env: [{ name: "A", value: "1" }],
      },
      { name: "sidecar", image: "side:1" },
    ],
  },
  status: {
    conditions: [
      { type: "Ready", status: "False" },
      { type: "PodScheduled", status: "True" },
    ],
  },
};

describe("strategic merge patch", () => {
  it("merges containers by name, ports by containerPort, env by name, conditions by type", () => {
    const out = strategicMerge(podSpec, {
      spec: {
        containers: [
          { name: "app", image: "app:2", ports: [{ containerPort: 9090 }], env: [{ name: "B", value: "2" }] },
        ],
      },
      status: { conditions: [{ type: "Ready", status: "True" }] },
    }) as typeof podSpec;
    expect(out.spec.containers.map((c) => `${c.name}=${c.image}`)).toEqual(["app=app:2", "sidecar=side:1"]);
    expect(out.spec.containers[0]!.ports!.map((p) => p.containerPort)).toEqual([8080, 9090]);
    expect(out.spec.containers[0]!.env!.map((e) => e.name)).toEqual(["A", "B"]);
    expect(out.status.conditions).toEqual([
      { type: "Ready", status: "True" },
      { type: "PodScheduled", status: "True" },
    ]);
  });

  it("follows $patch: delete, $patch: replace, $setElementOrder and null", () => {
    const out = strategicMerge(podSpec, {
      spec: {
        "$setElementOrder/containers": [{ name: "sidecar" }, { name: "app" }],
        containers: [{ name: "app", env: [{ name: "A", $patch: "delete" }] }],
      },
      status: null,
    }) as typeof podSpec;
    expect(out.spec.containers.map((c) => c.name)).toEqual(["sidecar", "app"]);
    expect(out.spec.containers[1]!.env).toEqual([]);
    expect(out.status).toBeUndefined();
    const replaced = strategicMerge(podSpec, {
      spec: { containers: [{ name: "only", $patch: "replace" }] },
    }) as typeof podSpec;
    expect(replaced.spec.containers).toEqual([]);
    const swapped = strategicMerge(podSpec, {
      spec: { $patch: "replace", containers: [{ name: "x" }] },
    }) as typeof podSpec;
    expect(swapped.spec).toEqual({ containers: [{ name: "x" }] });
  });

  it("merges a Service's ports by port, and replaces lists without a merge key", () => {
    const svc = { spec: { ports: [{ port: 80, targetPort: 8080 }], externalIPs: ["1.1.1.1"] } };
    const out = strategicMerge(svc, {
      spec: { ports: [{ port: 443 }], externalIPs: ["2.2.2.2"] },
    }) as typeof svc;
    expect(out.spec.ports.map((p) => p.port)).toEqual([80, 443]);
    expect(out.spec.externalIPs).toEqual(["2.2.2.2"]);
  });
});

describe("JSON patch and merge patch", () => {
  it("applies RFC 6902 operations and fails a failed test op as Invalid", () => {
    const doc = { metadata: { labels: { a: "1" } }, list: [1, 2] };
    expect(
      jsonPatch(doc, [
        { op: "add", path: "/metadata/labels/b~1c", value: "2" },
        { op: "remove", path: "/metadata/labels/a" },
        { op: "add", path: "/list/-", value: 3 },
        { op: "replace", path: "/list/0", value: 0 },
      ]),
    ).toEqual({ metadata: { labels: { "b/c": "2" } }, list: [0, 2, 3] });
    expect(doc.metadata.labels).toEqual({ a: "1" });
    let err: unknown;
    try {
      jsonPatch(doc, [{ op: "test", path: "/list/0", value: 9 }]);
    } catch (e) {
      err = e;
    }
    expect(findCode(err)).toBe(ApiErrorCode.INVALID);
  });

  it("RFC 7386: null deletes, lists replace", () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: null }, l: [3] })).toEqual({
      a: { c: 2 },
      l: [3],
    });
  });
});

describe("patch types", () => {
  it("415 UnsupportedMediaType for an unknown type, and for strategic merge on a custom resource", () => {
    expect(patchKindOf("application/strategic-merge-patch+json", true)).toBe("strategic");
    for (const [type, builtin] of [
      ["application/x-yaml", true],
      ["application/strategic-merge-patch+json", false],
    ] as const) {
      let err: unknown;
      try {
        patchKindOf(type, builtin);
      } catch (e) {
        err = e;
      }
      expect(toStatus(err)).toMatchObject({ code: 415, reason: "UnsupportedMediaType" });
      expect(toStatus(err).message).toContain("application/merge-patch+json");
    }
  });
});
