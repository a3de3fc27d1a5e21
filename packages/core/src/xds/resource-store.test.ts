import { describe, expect, it } from "vitest";
import { ResourceStore, resourceVersion, type StoreChange } from "./resource-store.js";

const T = "type.googleapis.com/test.Thing";
const bytes = (s: string) => new TextEncoder().encode(s);

function recording(store: ResourceStore): StoreChange[] {
  const changes: StoreChange[] = [];
  store.onChange((c) => changes.push(c));
  return changes;
}

describe("ResourceStore", () => {
  it("versions resources by content: 16 base64url characters, equal bytes equal version", () => {
    const v = resourceVersion(bytes("a"));
    expect(v).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(resourceVersion(bytes("a"))).toBe(v);
    expect(resourceVersion(bytes("b"))).not.toBe(v);
    // sha256, so versions stay what earlier releases and other replicas computed (a reconnecting
    // client's initial_resource_versions keep matching).
    expect(v).toBe("ypeBEsobvcr6wjGz");
  });

  it("reports one change per batch and skips what did not change", () => {
    const store = new ResourceStore();
    const changes = recording(store);
    store.applyBatch(T, {
      upserts: new Map([
        ["a", bytes("1")],
        ["b", bytes("2")],
      ]),
    });
    expect(changes).toHaveLength(1);
    expect([...changes[0]!.upserted.keys()]).toEqual(["a", "b"]);

    expect(store.applyBatch(T, { upserts: [["a", bytes("1")]], removes: ["missing"] })).toBeUndefined();
    expect(changes).toHaveLength(1);

    store.applyBatch(T, {
      upserts: [
        ["a", bytes("1")],
        ["b", bytes("3")],
      ],
      removes: ["a"],
    });
    expect(changes).toHaveLength(2);
    expect([...changes[1]!.upserted.keys()]).toEqual(["b"]);
    expect(changes[1]!.removed).toEqual(["a"]);
    expect(changes[1]!.systemVersion).toBe("2");
  });

  it("replaceAll upserts what differs and removes what is missing", () => {
    const store = new ResourceStore();
    store.replaceAll(
      T,
      new Map([
        ["a", bytes("1")],
        ["b", bytes("2")],
      ]),
    );
    const changes = recording(store);
    const change = store.replaceAll(
      T,
      new Map([
        ["b", bytes("2")],
        ["c", bytes("3")],
      ]),
    );
    expect(changes).toEqual([change]);
    expect([...change!.upserted.keys()]).toEqual(["c"]);
    expect(change!.removed).toEqual(["a"]);
    expect([...store.resources(T).keys()].sort()).toEqual(["b", "c"]);
    expect(
      store.replaceAll(T, [
        ["b", bytes("2")],
        ["c", bytes("3")],
      ]),
    ).toBeUndefined();
  });
});
