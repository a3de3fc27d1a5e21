// The chart's CRDs are what deploy/crds/generate-crds.mjs makes from the control plane's schema
// packages (run `pnpm crds` after changing kinds or bumping @kubernetes-models/*), and they are
// structural, as the API server requires of apiextensions.k8s.io/v1 CRDs.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SUPPORTED_KINDS } from "@ambient/kube";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
// @ts-expect-error: a plain ES module script (deploy/ holds no TypeScript)
import { CRD_DIR, generateCrds } from "../../deploy/crds/generate-crds.mjs";

type Schema = Record<string, unknown>;

describe("the chart's CRDs", () => {
  let generated: Map<string, string>;
  // One TypeScript program over the schema packages' declarations: seconds, more on a loaded machine.
  beforeAll(() => {
    generated = generateCrds();
  }, 120_000);

  it("equal the generator's output (pnpm crds)", () => {
    const committed = readdirSync(CRD_DIR).sort();
    expect(committed).toEqual([...generated.keys()].sort());
    for (const [name, text] of generated) {
      expect(readFileSync(join(CRD_DIR, name), "utf8"), `${name}: run pnpm crds`).toBe(text);
    }
  });

  it("cover every API-group kind the control plane reads, at every version it accepts", () => {
    for (const k of SUPPORTED_KINDS.filter((k) => k.group !== "")) {
      const crd = parse(generated.get(`${k.plural}.${k.group}.yaml`) ?? "null");
      expect(crd, `${k.kind}`).not.toBeNull();
      expect(crd.spec.names.kind).toBe(k.kind);
      expect(crd.spec.scope).toBe(k.namespaced ? "Namespaced" : "Cluster");
      expect(crd.spec.versions.map((v: Schema) => v.name)).toEqual(k.versions);
      expect(crd.spec.versions.filter((v: Schema) => v.storage).map((v: Schema) => v.name)).toEqual([
        k.versions[0],
      ]);
    }
  });

  it("carry upstream's short names and printer columns (kubectl get se, kubectl get we)", () => {
    const se = parse(generated.get("serviceentries.networking.istio.io.yaml") ?? "");
    const we = parse(generated.get("workloadentries.networking.istio.io.yaml") ?? "");
    expect(se.spec.names.shortNames).toEqual(["se"]);
    expect(we.spec.names.shortNames).toEqual(["we"]);
    expect(se.spec.names.categories).toEqual(["istio-io", "networking-istio-io"]);
    const columns = (crd: Schema) =>
      (crd.spec as { versions: Schema[] }).versions.map((v) =>
        (v.additionalPrinterColumns as Schema[]).map((c) => `${c.name} ${c.jsonPath}`),
      );
    expect(columns(se)).toEqual(
      Array(3).fill([
        "Hosts .spec.hosts",
        "Location .spec.location",
        "Resolution .spec.resolution",
        "Age .metadata.creationTimestamp",
      ]),
    );
    expect(columns(we)).toEqual(Array(3).fill(["Age .metadata.creationTimestamp", "Address .spec.address"]));
    const httpRoute = parse(generated.get("httproutes.gateway.networking.k8s.io.yaml") ?? "");
    const grpcRoute = parse(generated.get("grpcroutes.gateway.networking.k8s.io.yaml") ?? "");
    expect(httpRoute.spec.names.categories).toEqual(["gateway-api"]);
    expect(columns(httpRoute)).toEqual(
      Array(2).fill(["Hostnames .spec.hostnames", "Age .metadata.creationTimestamp"]),
    );
    expect(columns(grpcRoute)).toEqual([["Hostnames .spec.hostnames", "Age .metadata.creationTimestamp"]]);
  });

  it("are structural: every schema node has a type (or is int-or-string / open), fields are described", () => {
    const untyped: string[] = [];
    const walk = (s: Schema, path: string) => {
      if (!s.type && !s["x-kubernetes-int-or-string"] && !s["x-kubernetes-preserve-unknown-fields"])
        untyped.push(path);
      for (const [name, sub] of Object.entries((s.properties as Record<string, Schema>) ?? {}))
        walk(sub, `${path}.${name}`);
      if (s.items) walk(s.items as Schema, `${path}[]`);
      if (s.additionalProperties && typeof s.additionalProperties === "object") {
        walk(s.additionalProperties as Schema, `${path}{}`);
      }
      for (const k of ["oneOf", "anyOf", "allOf", "not"]) expect(s[k], `${path} has ${k}`).toBeUndefined();
    };
    for (const [name, text] of generated) {
      for (const v of parse(text).spec.versions) walk(v.schema.openAPIV3Schema, `${name}@${v.name}`);
    }
    expect(untyped).toEqual([]);
    const pa = parse(generated.get("peerauthentications.security.istio.io.yaml") ?? "");
    const mode = pa.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.mtls.properties.mode;
    expect(mode.enum).toEqual(["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]);
    expect(mode.description).toMatch(/mTLS mode/);
  });

  it("keep Istio's mutually exclusive fields as plain fields (the control plane refuses two of a group)", () => {
    const ap = parse(generated.get("authorizationpolicies.security.istio.io.yaml") ?? "");
    const spec = ap.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    // AuthorizationPolicy's selector and targetRefs are a oneOf group upstream; rules is a list.
    expect(Object.keys(spec.properties)).toEqual(
      expect.arrayContaining(["selector", "targetRefs", "rules", "action"]),
    );
    expect(spec.properties.rules.type).toBe("array");
  });
});
