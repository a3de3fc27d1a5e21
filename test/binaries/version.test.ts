// Every shipped binary answers --version (package version, build commit, Node.js) and lists it in
// --help, without reading any other configuration: images are smoke-tested with exactly this
// (test/images/). Runs the compiled binaries (the README's test command builds first); without a
// build it is skipped, visibly.

import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { binaryPath } from "@ambient/testbed";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

const BINARIES = [
  { pkg: "@ambient/controlplane", bin: "ambient-controlplane", main: "dist/main.js" },
  { pkg: "@ambient/ztunnel", bin: "ztunnel", main: "dist/main.js" },
  { pkg: "@ambient/waypoint", bin: "waypoint", main: "dist/main.js" },
  { pkg: "@ambient/cni", bin: "ambient-cni-agent", main: "dist/agent/main.js" },
  { pkg: "@ambient/ctl", bin: "ambientctl", main: "dist/cli.js" },
];
const built = BINARIES.every((b) => existsSync(join(dirname(dirname(binaryPath(b.pkg, b.bin))), b.main)));

describe.skipIf(!built)("--version of every binary (needs `pnpm build`; skipped otherwise)", () => {
  for (const b of BINARIES) {
    it(`${b.bin} prints its package version, the build commit and the Node.js running it`, async () => {
      const path = binaryPath(b.pkg, b.bin);
      const { version } = JSON.parse(readFileSync(join(dirname(path), "../package.json"), "utf8")) as {
        version: string;
      };
      // No other flag or env is needed: NODE_NAME and friends are absent on purpose.
      const { stdout } = await run(process.execPath, [path, "--version"], {
        env: { PATH: process.env.PATH, AMBIENT_BUILD_COMMIT: "0123abc" },
      });
      expect(stdout).toBe(
        `${b.bin} ${version} (commit 0123abc, Node.js ${process.version}, ${process.platform}-${process.arch})\n`,
      );
    });
  }

  it("every daemon lists --version in its --help", async () => {
    for (const b of BINARIES.filter((x) => x.bin !== "ambientctl")) {
      const { stdout } = await run(process.execPath, [binaryPath(b.pkg, b.bin), "--help"]);
      expect(stdout, b.bin).toMatch(/--version\s+print the version/);
    }
  });
});
