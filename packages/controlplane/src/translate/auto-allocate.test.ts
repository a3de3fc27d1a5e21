import { ipText, type Service } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { EntryAddressAllocator } from "./auto-allocate.js";
import { Translator, translate } from "./index.js";

const svc = (hostname: string): Service => ({
  name: "e",
  namespace: "ns",
  hostname,
  addresses: [],
  ports: [],
  subjectAltNames: [],
});
const vipOf = (s: Service | undefined) => s?.addresses.map((a) => ipText(a.address));

describe("EntryAddressAllocator", () => {
  it("deterministic, in 240.240.0.0/16, never .0 or .255, unique, and around addresses in use", () => {
    const requests = Array.from({ length: 2000 }, (_, i) => ({
      key: `ns/e/h${i}.test`,
      service: svc(`h${i}.test`),
    }));
    const a = new EntryAddressAllocator().allocate(requests, new Set(), "");
    const b = new EntryAddressAllocator().allocate([...requests].reverse(), new Set(), "");
    const ips = [...a.values()].map((s) => vipOf(s)![0]!);
    expect(new Set(ips).size).toBe(2000);
    for (const ip of ips) expect(ip).toMatch(/^240\.240\.\d+\.(?!0$)(?!255$)\d+$/);
    for (const [key, s] of a) expect(vipOf(b.get(key))).toEqual(vipOf(s));
    // An address somebody has is skipped: the host that hashed there moves on.
    const first = vipOf(a.get("ns/e/h0.test"))![0]!;
    const again = new EntryAddressAllocator().allocate(requests.slice(0, 1), new Set([first]), "");
    expect(vipOf(again.get("ns/e/h0.test"))![0]).not.toBe(first);
  });

  it("gives the same output object while nothing changed (the publisher diffs by identity)", () => {
    const allocator = new EntryAddressAllocator();
    const request = { key: "ns/e/a.test", service: svc("a.test") };
    const one = allocator.allocate([request], new Set(), "").get(request.key);
    expect(allocator.allocate([request], new Set(), "").get(request.key)).toBe(one);
  });
});

const entry = (name: string, spec: Record<string, unknown>): KubeObject =>
  ({
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name, namespace: "ext" },
    spec: { ports: [{ number: 443, name: "tls", protocol: "TLS" }], location: "MESH_EXTERNAL", ...spec },
  }) as KubeObject;
const objects = [
  { apiVersion: "v1", kind: "Namespace", metadata: { name: "ext" } } as KubeObject,
  entry("dns", { hosts: ["api.example.com", "www.example.com"], resolution: "DNS" }),
  entry("fixed", { hosts: ["fixed.example.com"], addresses: ["198.51.100.1"], resolution: "DNS" }),
  entry("none", { hosts: ["none.example.com"], resolution: "NONE" }),
  entry("wild", { hosts: ["*.wild.example.com"], resolution: "DNS" }),
];
const byHost = (services: readonly Service[]) => new Map(services.map((s) => [s.hostname, vipOf(s)]));

describe("translation: auto-allocated ServiceEntry addresses", () => {
  it("each host of an entry without addresses gets its own; given addresses, NONE and wildcards none", () => {
    const hosts = byHost(translate(objects).services);
    expect(hosts.get("api.example.com")?.[0]).toMatch(/^240\.240\./);
    expect(hosts.get("www.example.com")?.[0]).toMatch(/^240\.240\./);
    expect(hosts.get("www.example.com")).not.toEqual(hosts.get("api.example.com"));
    expect(hosts.get("fixed.example.com")).toEqual(["198.51.100.1"]);
    expect(hosts.get("none.example.com")).toEqual([]);
    expect(hosts.get("*.wild.example.com")).toEqual([]);
  });

  it("stable across translations, and the same object while the entry is unchanged", () => {
    const t = new Translator();
    const first = t.translate(objects).services.find((s) => s.hostname === "api.example.com");
    const second = t.translate(objects).services.find((s) => s.hostname === "api.example.com");
    expect(second).toBe(first);
    expect(vipOf(translate(objects).services.find((s) => s.hostname === "api.example.com"))).toEqual(
      vipOf(first),
    );
  });

  it("off with autoAllocateAddresses: false", () => {
    const hosts = byHost(translate(objects, { autoAllocateAddresses: false }).services);
    expect(hosts.get("api.example.com")).toEqual([]);
  });
});
