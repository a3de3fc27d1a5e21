import { describe, expect, it } from "vitest";
import type { KubeObject } from "../model/index.js";
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
});
