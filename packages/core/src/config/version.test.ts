import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usage } from "./config.js";
import { BUILD_COMMIT_ENV, versionText } from "./version.js";

describe("versionText", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ambient-version-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function manifest(name: string, body: string): Promise<URL> {
    await writeFile(join(dir, name), body);
    return pathToFileURL(join(dir, name));
  }

  it("names the binary, its package version, the build commit and the Node.js running it", async () => {
    const url = await manifest("ok.json", JSON.stringify({ name: "@ambient/x", version: "1.2.3" }));
    expect(versionText("ztunnel", url, { [BUILD_COMMIT_ENV]: "0123abc" })).toBe(
      `ztunnel 1.2.3 (commit 0123abc, Node.js ${process.version}, ${process.platform}-${process.arch})`,
    );
  });

  it("says the commit is unknown when the build did not pass one", async () => {
    const url = await manifest("ok2.json", JSON.stringify({ version: "1.2.3" }));
    expect(versionText("waypoint", url, {})).toMatch(/^waypoint 1\.2\.3 \(commit unknown, Node\.js v/);
    expect(versionText("waypoint", url, { [BUILD_COMMIT_ENV]: "" })).toContain("commit unknown");
  });

  it("fails with the path when the package.json is missing or has no version", async () => {
    const missing = pathToFileURL(join(dir, "nope.json"));
    expect(() => versionText("ztunnel", missing, {})).toThrow(
      expect.objectContaining({ code: "AMB_INSTALL_BROKEN", message: expect.stringContaining("nope.json") }),
    );
    const noVersion = await manifest("bad.json", "{}");
    expect(() => versionText("ztunnel", noVersion, {})).toThrow(/bad\.json has no "version"/);
  });

  it("is listed with --help in every binary's usage", () => {
    const text = usage("ztunnel", []);
    expect(text).toContain("--version");
    expect(text).toContain("--help");
  });
});
