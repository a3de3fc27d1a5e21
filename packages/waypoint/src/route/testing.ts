// Builders shared by the route tests: a request with mesh-like defaults, a VirtualService from
// its spec, and a seeded random source so weighted picks are reproducible.

import type { L7Request } from "../model/request.js";
import type { VirtualServiceSpec, VsObject } from "./spec.js";

export type RequestOverrides = Omit<Partial<L7Request>, "source" | "destination"> & {
  source?: Partial<L7Request["source"]>;
  destination?: Partial<L7Request["destination"]>;
};

export function request(overrides: RequestOverrides = {}): L7Request {
  const { source, destination, ...rest } = overrides;
  return {
    method: "GET",
    scheme: "http",
    authority: "reviews:9080",
    path: "/",
    headers: {},
    port: 9080,
    protocol: "http/1.1",
    ...rest,
    source: { ip: "10.0.0.9", namespace: "default", ...source },
    destination: {
      host: "reviews.default.svc.cluster.local",
      namespace: "default",
      ip: "10.96.0.10",
      port: 9080,
      ...destination,
    },
  };
}

export function virtualService(name: string, spec: VirtualServiceSpec, namespace = "default"): VsObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name, namespace },
    spec,
  };
}

/** mulberry32: tiny, fast and good enough to check traffic splits statistically. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
