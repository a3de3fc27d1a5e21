// `ambientctl up --kube` as a person runs it (loopback, default range 127.30): the cluster starts
// from a folder, the summary names the kubeconfig to export and every pod Ready on its node, and
// everything stops on exit. The netns variant is test/netns/kube-e2e.test.ts.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "@ambient/ctl";
import { afterAll, describe, expect, it, vi } from "vitest";
import { type TempDir, tempDir } from "../utils/index.js";

const fixture = fileURLToPath(new URL("../kube/fixtures/cluster", import.meta.url));
let state: TempDir | undefined;
afterAll(async () => state?.cleanup());

describe("ambientctl up --kube", () => {
  it("starts the cluster, prints export KUBECONFIG and the pods, and stops on exit", async () => {
    state = await tempDir("ambient-up-kube-");
    const lines: string[] = [];
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    let code: number;
    try {
      code = await run(
        [
          "up",
          "--kube",
          "-f",
          fixture,
          "--state-dir",
          state.path,
          "--exit-after-start",
          "--log-level",
          "error",
        ],
        {},
        (s) => lines.push(s),
      );
    } finally {
      stderr.mockRestore();
    }
    const out = lines.join("\n");
    expect(code).toBe(0);
    expect(out).toContain(`export KUBECONFIG=${join(state.path, "kubeconfig")}`);
    expect(existsSync(join(state.path, "kubeconfig"))).toBe(true);
    expect(out).toMatch(/node-2\s+127\.30\.2\.1/);
    expect(out).toMatch(/demo\s+web\s+node-2\s+127\.30\.2\.\d+\s+True/);
    expect(out).toMatch(/istio-system\s+istiod\s+node-1\s+127\.30\.1\.1\s+True/);
    expect(out).toMatch(/istio-system\s+ztunnel-node-1\s+node-1\s+127\.30\.1\.1\s+True/);
    expect(out).toContain("kubectl label namespace <ns> istio.io/dataplane-mode=ambient");
    // Stopped: nothing answers on the pods' addresses any more.
    await expect(fetch("http://127.30.1.1:15020/metrics")).rejects.toThrow();
  }, 90_000);

  it("refuses --nodes without --kube and --demo with --kube, naming why", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await expect(run(["up", "--nodes", "a,b"], {}, () => {})).resolves.toBe(2);
      expect(String(stderr.mock.calls[0]?.[0])).toMatch(/--nodes applies to --kube only/);
      await expect(run(["up", "--kube", "--demo"], {}, () => {})).resolves.toBe(2);
      expect(String(stderr.mock.calls[1]?.[0])).toMatch(/--demo runs on the loopback mesh of a folder/);
    } finally {
      stderr.mockRestore();
    }
  });
});
