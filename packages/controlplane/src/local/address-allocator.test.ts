import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { AddressAllocator, internalIp } from "./address-allocator.js";

const node = (name: string, ip?: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name },
  ...(ip ? { status: { addresses: [{ type: "InternalIP", address: ip }] } } : {}),
});
const pod = (name: string, nodeName: string, ip?: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "demo" },
  spec: { nodeName },
  ...(ip ? { status: { phase: "Running", podIP: ip } } : {}),
});

const service = (name: string, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: "demo" },
  spec: { ports: [{ port: 80 }], ...spec },
});
const vip = (o: KubeObject | undefined) => (o?.spec as { clusterIP?: string } | undefined)?.clusterIP;

const ips = (objs: KubeObject[]) =>
  objs.map((o) =>
    o.kind === "Node" ? internalIp(o as never) : (o.status as { podIP?: string } | undefined)?.podIP,
  );

describe("AddressAllocator", () => {
  it("keeps given addresses and fills the rest per node, avoiding collisions", () => {
    const a = new AddressAllocator();
    const out = a.assign([
      node("b"),
      node("a", "127.10.1.1"),
      pod("p1", "a"),
      pod("p2", "b"),
      pod("p3", "a", "127.10.1.10"),
    ]);
    expect(ips(out)).toEqual(["127.10.2.1", "127.10.1.1", "127.10.1.11", "127.10.2.10", "127.10.1.10"]);
  });

  it("never moves an address once given, even when other pods come and go", () => {
    const a = new AddressAllocator();
    const first = ips(a.assign([node("a"), pod("p1", "a"), pod("p2", "a")]));
    const second = ips(a.assign([node("a"), pod("p2", "a"), pod("p0", "a")]));
    expect(second[1]).toBe(first[2]);
    expect(second[2]).not.toBe(first[2]);
  });

  it("does not mutate its input", () => {
    const input = [node("a"), pod("p1", "a")];
    new AddressAllocator().assign(input);
    expect(input[1]!.status).toBeUndefined();
  });

  it("gives Services without a clusterIP a VIP from 127.10.100.x, around the given ones", () => {
    const a = new AddressAllocator();
    const out = a.assign([
      service("given", { clusterIP: "127.10.100.1" }),
      service("s1"),
      service("headless", { clusterIP: "None" }),
      service("external", { type: "ExternalName", externalName: "example.com" }),
      service("s2"),
    ]);
    expect(out.map(vip)).toEqual(["127.10.100.1", "127.10.100.2", "None", undefined, "127.10.100.3"]);
    expect((out[1]!.spec as { clusterIPs?: string[] }).clusterIPs).toEqual(["127.10.100.2"]);
  });

  it("keeps a Service's VIP across reloads, unless a manifest now claims it for another Service", () => {
    const a = new AddressAllocator();
    expect(vip(a.assign([service("s1"), service("s2")])[1])).toBe("127.10.100.2");
    expect(vip(a.assign([service("s2")])[0])).toBe("127.10.100.2");
    const claimed = a.assign([service("mine", { clusterIP: "127.10.100.2" }), service("s2")]);
    expect(claimed.map(vip)).toEqual(["127.10.100.2", "127.10.100.3"]);
  });
});
