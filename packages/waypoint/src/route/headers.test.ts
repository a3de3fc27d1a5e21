import { describe, expect, it } from "vitest";
import type { HeaderOps } from "../model/request.js";
import { applyHeaderOps, compileHeaderOps, mergeHeaderOps } from "./headers.js";
import { seededRandom } from "./testing.js";

describe("applyHeaderOps", () => {
  it.each<[string, Record<string, string>, HeaderOps, Record<string, string>]>([
    ["set replaces", { "x-a": "old" }, { set: { "x-a": "new" } }, { "x-a": "new" }],
    ["set creates", {}, { set: { "x-a": "new" } }, { "x-a": "new" }],
    ["add appends with a comma", { "x-a": "1" }, { add: { "x-a": "2" } }, { "x-a": "1, 2" }],
    ["add creates", {}, { add: { "x-a": "2" } }, { "x-a": "2" }],
    ["remove deletes", { "x-a": "1", "x-b": "2" }, { remove: ["x-a"] }, { "x-b": "2" }],
    [
      "names are case-insensitive",
      { "X-A": "1", "X-B": "1" },
      { set: { "x-a": "2" }, remove: ["x-B"] },
      { "x-a": "2" },
    ],
    [
      "remove, then set, then add",
      { "x-a": "1" },
      { remove: ["x-a"], set: { "x-a": "2" }, add: { "x-a": "3" } },
      { "x-a": "2, 3" },
    ],
  ])("%s", (_name, headers, ops, expected) => {
    const before = { ...headers };
    expect(applyHeaderOps(headers, ops)).toEqual(expected);
    expect(headers).toEqual(before); // the input is not modified
  });
});

describe("compileHeaderOps", () => {
  it("lowercases names, drops pseudo-headers and Host, and lifts Host into an authority rewrite", () => {
    expect(
      compileHeaderOps({
        set: { "X-A": "1", host: "h1", ":path": "/x" },
        add: { Host: "h2", "x-b": "2" },
        remove: ["X-C", ":authority", "Host"],
      }),
    ).toEqual({ ops: { set: { "x-a": "1" }, add: { "x-b": "2" }, remove: ["x-c"] }, authority: "h1" });
  });
});

describe("mergeHeaderOps", () => {
  // Applying merge(a, b) must equal applying a then b, for any ops over a few names.
  it("is equivalent to applying route ops then destination ops", () => {
    const random = seededRandom(7);
    const names = ["x-a", "x-b", "X-C"];
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
    const ops = (tag: string): HeaderOps => {
      const set: Record<string, string> = {};
      const add: Record<string, string> = {};
      const remove: string[] = [];
      for (const name of names) {
        const roll = random();
        if (roll < 0.25) set[name] = `${tag}-set`;
        else if (roll < 0.5) add[name] = `${tag}-add`;
        else if (roll < 0.7) remove.push(name);
        if (random() < 0.2) add[pick(names)] = `${tag}-add2`;
      }
      const out: HeaderOps = {};
      if (Object.keys(set).length > 0) out.set = set;
      if (Object.keys(add).length > 0) out.add = add;
      if (remove.length > 0) out.remove = remove;
      return out;
    };
    for (let i = 0; i < 500; i++) {
      const start: Record<string, string> = {};
      for (const name of names) if (random() < 0.5) start[name.toLowerCase()] = "orig";
      const a = ops("route");
      const b = ops("dest");
      expect(applyHeaderOps(start, mergeHeaderOps(a, b))).toEqual(
        applyHeaderOps(applyHeaderOps(start, a), b),
      );
    }
  });
});
