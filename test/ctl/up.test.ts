// ambientctl up on the shipped examples/ folder: the demo mesh loads cleanly and is printed.

import { fileURLToPath } from "node:url";
import { run } from "@ambient/ctl";
import { afterAll, describe, expect, it } from "vitest";
import { type TempDir, tempDir } from "../utils/index.js";

const examples = fileURLToPath(new URL("../../examples", import.meta.url));
let state: TempDir | undefined;
afterAll(async () => state?.cleanup());

describe("ambientctl up", () => {
  it("serves examples/ with no manifest problems and prints the mesh", async () => {
    state = await tempDir("ambient-up-");
    const lines: string[] = [];
    const code = await run(
      [
        "up",
        "-f",
        examples,
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        state.path,
        "--exit-after-start",
        "--log-level",
        "silent",
      ],
      {},
      (s) => lines.push(s),
    );
    const out = lines.join("\n");
    expect(code).toBe(0);
    expect(out).not.toMatch(/manifest problem/);
    expect(out).toMatch(/demo\s+httpbin-v1\s+127\.10\.2\.20\s+node-2\s+httpbin\s+HBONE/);
    expect(out).toMatch(/legacy\s+legacy-client\s+127\.10\.2\.30\s+node-2\s+default\s+NONE/);
    expect(out).toMatch(
      /demo\s+httpbin\s+httpbin\.demo\.svc\.cluster\.local\s+127\.10\.100\.1\s+80->named\s+2/,
    );
    expect(out).toMatch(/demo\s+httpbin-allow-sleep\s+WORKLOAD_SELECTOR\s+ALLOW/);
  });
});
