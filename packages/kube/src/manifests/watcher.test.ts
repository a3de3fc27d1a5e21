import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryLogger } from "@ambient/core";
import { eventually } from "@ambient/core/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManifestStore } from "./store.js";
import { FolderWatcher } from "./watcher.js";

const rule = (name: string) =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: ${name}, namespace: demo }\nspec:\n  host: x\n`;

describe("a watched manifests folder", () => {
  let dir: string;
  let store: ManifestStore;
  let watcher: FolderWatcher;
  const names = () => store.objects().map((o) => o.metadata.name);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ambient-watch-"));
    await writeFile(join(dir, "a.yaml"), rule("first"));
    const { logger } = createMemoryLogger();
    store = new ManifestStore(dir, logger);
    await store.reload();
    watcher = new FolderWatcher(dir, async () => void (await store.reload()), logger);
    await watcher.start();
  });

  afterEach(async () => {
    await watcher.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // chokidar drops a change within 50 ms of the previous one and folds delete + re-create into one
  // event: a file removed and written again right after a reload used to be missed for good.
  it("follows a file deleted and written again in quick succession, every time", async () => {
    const file = join(dir, "a.yaml");
    for (let i = 0; i < 15; i++) {
      const name = `rule-${i}`;
      await rm(file);
      await writeFile(file, rule(name));
      await eventually(() => expect(names()).toEqual([name]), 3_000, 5);
    }
  });

  it("reads again a file rewritten at the same size with its old mtime (one clock tick)", async () => {
    // Its own store, without the watcher: only what reload() decides is under test.
    const own = await mkdtemp(join(tmpdir(), "ambient-racy-"));
    try {
      const file = join(own, "a.yaml");
      // A whole-second mtime (just ahead of now) can be put back exactly after the rewrite.
      const tick = Math.ceil(Date.now() / 1000);
      await writeFile(file, rule("first"));
      await utimes(file, tick, tick);
      const { logger } = createMemoryLogger();
      const racy = new ManifestStore(own, logger);
      await racy.reload();
      // Same length as "first" and the same mtime, as a rewrite within one clock tick leaves them.
      await writeFile(file, rule("secnd"));
      await utimes(file, tick, tick);
      await racy.reload();
      expect(racy.objects().map((o) => o.metadata.name)).toEqual(["secnd"]);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
