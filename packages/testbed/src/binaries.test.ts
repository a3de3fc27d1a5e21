import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { binaryPath, nodeArgv } from "./binaries.js";

describe("nodeArgv", () => {
  it("passes the runtime flags of an `env -S node` shebang before the file", () => {
    const ztunnel = binaryPath("@ambient/ztunnel", "ztunnel");
    expect(nodeArgv(ztunnel)).toEqual(["--max-semi-space-size=4", ztunnel]);
  });

  it("gives the file alone for a plain node shebang or none", () => {
    const dir = mkdtempSync(join(tmpdir(), "nodeargv-"));
    const plain = join(dir, "plain.js");
    writeFileSync(plain, "#!/usr/bin/env node\nconsole.log(1);\n");
    const none = join(dir, "none.js");
    writeFileSync(none, "console.log(1);\n");
    expect(nodeArgv(plain)).toEqual([plain]);
    expect(nodeArgv(none)).toEqual([none]);
  });

  it("the ztunnel executable runs through its shebang as the image runs it", () => {
    // The image's entrypoint executes the file itself: `env -S` must split the flags.
    const out = execFileSync(binaryPath("@ambient/ztunnel", "ztunnel"), ["--version"], { encoding: "utf8" });
    expect(out).toMatch(/^ztunnel /);
  });
});
