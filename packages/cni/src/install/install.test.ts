// Installing on a temporary node layout: the bridge conflist the netns harness writes gets our
// entry once however often the agent installs, a .conf is converted, bad files are named, and
// the wrapper runs the copied plugin.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chainPlugin, PLUGIN_TYPE, primaryConfigFile } from "./conflist.js";
import { CniInstallErrorCode } from "./errors.js";
import { installPlugin, pluginEntry, uninstallPlugin } from "./install.js";

// What test/netns's harness writes for node 1 (packages/ctl/src/netns/node-conflist.ts).
const BRIDGE = {
  cniVersion: "1.0.0",
  name: "ambient-pods",
  plugins: [
    {
      type: "bridge",
      bridge: "cni0",
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: "host-local",
        ranges: [[{ subnet: "198.19.1.0/24", gateway: "198.19.1.1" }]],
        routes: [{ dst: "0.0.0.0/0" }],
        dataDir: "/var/lib/cni/networks-node1",
      },
    },
  ],
};
const SOCKET = "/run/ambient/cni.sock";

describe("install and chain", () => {
  let dir: string;
  let binDir: string;
  let confDir: string;
  let pluginDir: string;
  const conflist = () => join(confDir, "10-ambient-bridge.conflist");
  const read = () => JSON.parse(readFileSync(conflist(), "utf8"));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "amb-cni-install-"));
    binDir = join(dir, "bin");
    confDir = join(dir, "net.d");
    pluginDir = join(dir, "plugin");
    for (const d of [binDir, confDir, pluginDir]) mkdirSync(d);
    writeFileSync(conflist(), JSON.stringify(BRIDGE, null, 2));
    // A stand-in for dist/plugin: same shape (ESM, main(env) → exit code), prints a marker.
    writeFileSync(
      join(pluginDir, "main.js"),
      'import { marker } from "./other.js";\nexport async function main(env) { process.stdout.write(marker + env.CNI_COMMAND); return 3; }\n',
    );
    writeFileSync(join(pluginDir, "other.js"), 'export const marker = "fake-plugin:";\n');
    writeFileSync(join(pluginDir, "main.d.ts"), "ignored");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("appends our entry after bridge, keeping the rest as it was", async () => {
    const r = await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    expect(r.chain).toEqual({ file: conflist(), changed: true });
    expect(read()).toEqual({ ...BRIDGE, plugins: [...BRIDGE.plugins, pluginEntry({ agentSocket: SOCKET })] });
    expect(read().plugins[1]).toMatchObject({
      type: "ambient-cni",
      agentSocket: SOCKET,
      excludeNamespaces: ["kube-system"],
    });
  });

  it("is idempotent: a second install writes nothing and leaves one entry", async () => {
    await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    const before = readFileSync(conflist(), "utf8");
    const mtime = statSync(conflist()).mtimeMs;
    const again = await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    expect(again.chain.changed).toBe(false);
    expect(readFileSync(conflist(), "utf8")).toBe(before);
    expect(statSync(conflist()).mtimeMs).toBe(mtime);
    expect(read().plugins.filter((p: { type: string }) => p.type === PLUGIN_TYPE)).toHaveLength(1);
  });

  it("updates our entry in place when its settings change", async () => {
    const list = {
      ...BRIDGE,
      plugins: [...BRIDGE.plugins, { type: "ambient-cni", agentSocket: "/old" }, { type: "tuning" }],
    };
    writeFileSync(conflist(), JSON.stringify(list));
    await installPlugin({
      binDir,
      confDir,
      agentSocket: SOCKET,
      pluginDir,
      excludeNamespaces: ["kube-system", "istio-system"],
    });
    expect(read().plugins.map((p: { type: string }) => p.type)).toEqual(["bridge", "ambient-cni", "tuning"]);
    expect(read().plugins[1].agentSocket).toBe(SOCKET);
    expect(read().plugins[1].excludeNamespaces).toEqual(["kube-system", "istio-system"]);
  });

  it("chains into the file the runtime picks (first by name), converting a single .conf", async () => {
    const { cniVersion, name, plugins } = BRIDGE;
    writeFileSync(join(confDir, "05-bridge.conf"), JSON.stringify({ cniVersion, name, ...plugins[0] }));
    writeFileSync(join(confDir, ".hidden.conflist"), "not ours");
    writeFileSync(join(confDir, "README"), "not a config");
    expect(await primaryConfigFile(confDir)).toBe(join(confDir, "05-bridge.conf"));
    const r = await chainPlugin(confDir, pluginEntry({ agentSocket: SOCKET }));
    expect(r).toMatchObject({
      file: join(confDir, "05-bridge.conflist"),
      converted: join(confDir, "05-bridge.conf"),
    });
    expect(existsSync(join(confDir, "05-bridge.conf"))).toBe(false);
    const list = JSON.parse(readFileSync(r.file, "utf8"));
    expect(list).toEqual({ cniVersion, name, plugins: [plugins[0], pluginEntry({ agentSocket: SOCKET })] });
    expect(await primaryConfigFile(confDir)).toBe(r.file);
  });

  it("says clearly when there is no config or it is malformed", async () => {
    rmSync(conflist());
    await expect(installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir })).rejects.toMatchObject({
      code: CniInstallErrorCode.NO_CONFIG,
      message: expect.stringContaining(confDir),
    });
    writeFileSync(conflist(), "{ not json");
    await expect(installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir })).rejects.toMatchObject({
      code: CniInstallErrorCode.CONFIG_MALFORMED,
      message: expect.stringContaining(conflist()),
    });
    writeFileSync(conflist(), JSON.stringify({ name: "x", plugins: [{ type: "bridge" }, 3] }));
    await expect(installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir })).rejects.toMatchObject({
      code: CniInstallErrorCode.CONFIG_MALFORMED,
      message: expect.stringContaining("plugins[1]"),
    });
    await expect(
      installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir: join(dir, "nowhere") }),
    ).rejects.toMatchObject({ code: CniInstallErrorCode.PLUGIN_NOT_BUILT });
  });

  it("installs a self-contained copy behind an executable wrapper that runs it", async () => {
    const r = await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    expect(r.binary).toBe(join(binDir, "ambient-cni"));
    expect(statSync(r.binary).mode & 0o111).toBe(0o111);
    expect(readdirSync(r.pluginDir).sort()).toEqual([
      "ambient-cni.js",
      "main.js",
      "other.js",
      "package.json",
    ]);
    let out = "";
    try {
      execFileSync(r.binary, { env: { CNI_COMMAND: "VERSION" }, encoding: "utf8" });
    } catch (err) {
      const e = err as { status: number; stdout: string };
      expect(e.status).toBe(3);
      out = e.stdout;
    }
    expect(out).toBe("fake-plugin:VERSION");
    expect(readdirSync(binDir).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("an upgrade replaces the copy and removes the old one", async () => {
    const first = await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    writeFileSync(join(pluginDir, "other.js"), 'export const marker = "v2:";\n');
    const second = await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    expect(second.pluginDir).not.toBe(first.pluginDir);
    expect(existsSync(first.pluginDir)).toBe(false);
    expect(readFileSync(second.binary, "utf8")).toContain(second.pluginDir.slice(binDir.length + 1));
  });

  it("with copyNode, the wrapper execs the Node.js copied next to the plugin, not the agent's", async () => {
    // Stand-ins for Node.js: the wrapper passes them the entry file, which they echo.
    const nodeA = join(dir, "node-a");
    writeFileSync(nodeA, '#!/bin/sh\necho "node-a:$1"\n', { mode: 0o755 });
    const r = await installPlugin({
      binDir,
      confDir,
      agentSocket: SOCKET,
      pluginDir,
      nodePath: nodeA,
      copyNode: true,
    });
    expect(readdirSync(r.pluginDir)).toContain("node");
    expect(readFileSync(r.binary, "utf8")).not.toContain(nodeA);
    // The agent's own Node.js is not on the node (it runs in a container): the copy still runs.
    rmSync(nodeA);
    expect(execFileSync(r.binary, { env: { CNI_COMMAND: "VERSION" }, encoding: "utf8" })).toBe(
      `node-a:${join(r.pluginDir, "ambient-cni.js")}\n`,
    );

    // Another Node.js with the same plugin files is another version: installed beside, the old one gone.
    const nodeB = join(dir, "node-b");
    writeFileSync(nodeB, '#!/bin/sh\necho "node-b:$1"\n', { mode: 0o755 });
    const next = await installPlugin({
      binDir,
      confDir,
      agentSocket: SOCKET,
      pluginDir,
      nodePath: nodeB,
      copyNode: true,
    });
    expect(next.pluginDir).not.toBe(r.pluginDir);
    expect(existsSync(r.pluginDir)).toBe(false);
    expect(execFileSync(next.binary, { encoding: "utf8" })).toMatch(/^node-b:/);
  });

  it("names the Node.js it could not copy", async () => {
    const missing = join(dir, "no-node-here");
    await expect(
      installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir, nodePath: missing, copyNode: true }),
    ).rejects.toMatchObject({
      code: CniInstallErrorCode.NODE_NOT_COPIED,
      message: expect.stringContaining(missing),
    });
    expect(existsSync(join(binDir, "ambient-cni"))).toBe(false);
  });

  it("uninstall removes our entry and the binary, and nothing else", async () => {
    await installPlugin({ binDir, confDir, agentSocket: SOCKET, pluginDir });
    const r = await uninstallPlugin({ binDir, confDir });
    expect(r.unchained).toEqual([conflist()]);
    expect(read()).toEqual(BRIDGE);
    expect(readdirSync(binDir)).toEqual([]);
    expect(await uninstallPlugin({ binDir, confDir })).toEqual({ unchained: [] });
  });
});
