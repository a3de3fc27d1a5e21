import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { listManifestFiles, parseManifestText } from "./loader.js";

describe("parseManifestText", () => {
  it("keeps document indices across empty documents", () => {
    const load = parseManifestText("a.yaml", "---\nkind: A\n---\n---\nkind: B\n");
    expect(load.ok).toBe(true);
    expect(load.documents.map((d) => [d.source.index, (d.value as { kind: string }).kind])).toEqual([
      [0, "A"],
      [2, "B"],
    ]);
  });

  it("reports malformed YAML with file, document and line, and marks the file not ok", () => {
    const load = parseManifestText("bad.yaml", "kind: A\n---\nkind: [unclosed\n");
    expect(load.ok).toBe(false);
    expect(load.problems).toHaveLength(1);
    expect(load.problems[0]!.source).toEqual({ file: "bad.yaml", index: 1 });
    expect(load.problems[0]!.message).toMatch(/malformed YAML \(line \d+, column \d+\)/);
  });

  it("rejects duplicate keys rather than silently taking the last", () => {
    const load = parseManifestText("dup.yaml", "kind: A\nkind: B\n");
    expect(load.ok).toBe(false);
    expect(load.problems[0]!.message).toMatch(/unique|duplicate/i);
  });

  it("resolves aliases but refuses an alias bomb", () => {
    const ok = parseManifestText("alias.yaml", "base: &b { app: x }\nkind: A\nlabels: *b\n");
    expect(ok.ok).toBe(true);
    expect((ok.documents[0]!.value as { labels: unknown }).labels).toEqual({ app: "x" });
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      lines.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
      );
    const bomb = parseManifestText("bomb.yaml", lines.join("\n"));
    expect(bomb.ok).toBe(false);
    expect(bomb.problems[0]!.message).toMatch(/alias/i);
  });

  it("unpacks kind: List", () => {
    const load = parseManifestText("list.yaml", "kind: List\nitems:\n  - kind: A\n  - kind: B\n");
    expect(load.documents.map((d) => (d.value as { kind: string }).kind)).toEqual(["A", "B"]);
  });
});

describe("listManifestFiles", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("finds .yaml and .yml files recursively, skipping dot folders and other files", async () => {
    dir = await mkdtemp(join(tmpdir(), "ambient-list-"));
    await mkdir(join(dir, "sub"));
    await mkdir(join(dir, ".git"));
    await writeFile(join(dir, "b.yml"), "");
    await writeFile(join(dir, "a.yaml"), "");
    await writeFile(join(dir, "sub", "c.YAML"), "");
    await writeFile(join(dir, ".git", "d.yaml"), "");
    await writeFile(join(dir, "readme.md"), "");
    expect(await listManifestFiles(dir)).toEqual(["a.yaml", "b.yml", "sub/c.YAML"]);
  });
});
