// `ambientctl up --netns` on the shipped examples/: the same harness as the e2e tests, driven the
// way a person runs it. Root only; needs the built packages (`pnpm build`).

import { fileURLToPath } from "node:url";
import { run } from "@ambient/ctl";
import { netns } from "@ambient/testbed";
import { describe, expect, it } from "vitest";

const isRoot = process.getuid?.() === 0;
const examples = fileURLToPath(new URL("../../examples", import.meta.url));
const PREFIX = "ambt-up-";

describe.skipIf(!isRoot)("ambientctl up --netns (needs root; skipped otherwise)", () => {
  it("starts the examples mesh on network namespaces, prints how to use it, and removes everything on exit", async () => {
    const lines: string[] = [];
    const code = await run(
      [
        "up",
        "--netns",
        "--netns-prefix",
        PREFIX,
        "-f",
        examples,
        "--exit-after-start",
        "--log-level",
        "error",
      ],
      {},
      (s) => lines.push(s),
    );
    const out = lines.join("\n");
    expect(code).toBe(0);
    expect(out).toMatch(/node-1\s+ambt-up-node-node-1\s+198\.18\.0\.11\s+198\.19\.1\.0\/24/);
    expect(out).toMatch(
      /demo\s+httpbin-v1\s+node-2\s+ambt-up-demo-httpbin-v1\s+198\.19\.2\.\d+\s+8080\s+ambient \(redirected\)/,
    );
    expect(out).toMatch(
      /demo\s+sleep\s+node-1\s+ambt-up-demo-sleep\s+198\.19\.1\.\d+\s+-\s+ambient \(redirected\)/,
    );
    expect(out).toMatch(
      /legacy\s+legacy-client\s+node-2\s+ambt-up-legacy-legacy-client\s+198\.19\.2\.\d+\s+-\s+none/,
    );
    expect(out).toContain("ip netns exec ambt-up-demo-sleep curl http://httpbin.demo.svc.cluster.local/");
    // Nothing is left behind.
    expect((await netns.listNetns()).filter((n) => n.startsWith(PREFIX))).toEqual([]);
  }, 120_000);
});
