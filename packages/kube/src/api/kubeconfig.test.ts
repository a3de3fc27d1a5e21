import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadUserKubeConfig } from "./kubeconfig.js";

const config = (cluster: string, server: string, current?: string, namespace?: string) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server } }],
    users: [{ name: `${cluster}-user`, user: { token: "t" } }],
    contexts: [
      { name: cluster, context: { cluster, user: `${cluster}-user`, ...(namespace ? { namespace } : {}) } },
    ],
    ...(current ? { "current-context": current } : {}),
  });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ambient-kubeconfig-"));
  await writeFile(join(dir, "a"), config("a", "https://a.example:6443", "a"));
  await writeFile(join(dir, "b"), config("b", "https://b.example:6443", "b", "team-b"));
  await writeFile(join(dir, "dup"), config("a", "https://other.example:6443"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("loadUserKubeConfig", () => {
  it("merges every $KUBECONFIG file, the first naming a cluster or the current context wins", () => {
    const { kc, namespace } = loadUserKubeConfig({
      env: { KUBECONFIG: [join(dir, "a"), join(dir, "dup"), join(dir, "b")].join(":") },
    });
    expect(kc.getCurrentContext()).toBe("a");
    expect(kc.getCurrentCluster()?.server).toBe("https://a.example:6443");
    expect(namespace).toBe("default");
  });

  it("--context picks another context and its namespace; an unknown one is refused by name", () => {
    const env = { KUBECONFIG: `${join(dir, "a")}:${join(dir, "b")}` };
    const { kc, namespace } = loadUserKubeConfig({ context: "b", env });
    expect(kc.getCurrentCluster()?.server).toBe("https://b.example:6443");
    expect(namespace).toBe("team-b");
    expect(() => loadUserKubeConfig({ context: "c", env })).toThrow(/context "c" does not exist/);
  });

  it("--kubeconfig beats $KUBECONFIG; $HOME/.kube/config is the fallback; nothing at all is a clear error", async () => {
    expect(
      loadUserKubeConfig({
        kubeconfig: join(dir, "b"),
        env: { KUBECONFIG: join(dir, "a") },
      }).kc.getCurrentContext(),
    ).toBe("b");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(dir, "home", ".kube"), { recursive: true });
    await writeFile(join(dir, "home", ".kube", "config"), config("h", "https://h.example:6443", "h"));
    expect(loadUserKubeConfig({ env: { HOME: join(dir, "home") } }).kc.getCurrentContext()).toBe("h");
    expect(() => loadUserKubeConfig({ env: { HOME: join(dir, "nowhere") } })).toThrow(
      /no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or create ~\/.kube\/config/,
    );
    expect(() => loadUserKubeConfig({ kubeconfig: join(dir, "missing"), env: {} })).toThrow(
      /cannot read kubeconfig .*missing/,
    );
  });
});
