// The real ambient-cni binary, exec'd as a runtime would (CNI_* env, config on stdin), against a
// stand-in node agent: the real CNI server with stub callbacks on a temporary unix socket. This is
// the spec conformance table; it needs no root. It runs the compiled plugin (the README's test
// command builds first); without a build it is skipped, visibly.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AgentError,
  type CniAddRequest,
  type CniDelRequest,
  type CniServer,
  installPlugin,
  startCniServer,
} from "@ambient/cni";
import { createLogger } from "@ambient/core";
import { binaryPath } from "@ambient/testbed";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

const BIN = binaryPath("@ambient/cni", "ambient-cni");
const BUILT = fileURLToPath(new URL("../../packages/cni/dist/plugin/main.js", import.meta.url));
const built = existsSync(BUILT);

/** What the bridge plugin (host-local IPAM, 198.19.1.0/24) prints for a pod: our prevResult. */
const PREV = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "cni0", mac: "4a:6e:1f:00:00:01" },
    { name: "veth1a2b3c4d", mac: "4a:6e:1f:00:00:02" },
    { name: "eth0", mac: "4a:6e:1f:00:00:03", sandbox: "/var/run/netns/ambient-demo-web" },
  ],
  ips: [{ interface: 2, address: "198.19.1.5/24", gateway: "198.19.1.1" }],
  routes: [{ dst: "0.0.0.0/0", gw: "198.19.1.1" }],
  dns: {},
};

interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

function exec(bin: string, env: Record<string, string | undefined>, stdin?: string): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin.endsWith(".js") ? process.execPath : bin, bin.endsWith(".js") ? [bin] : [], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(stdin);
  });
}

describe.skipIf(!built)(
  `ambient-cni CNI conformance${built ? "" : " (skipped: packages/cni/dist is missing; run `npx -y pnpm@10 run build` first)"}`,
  () => {
    const logger = createLogger({ level: "silent" });
    let dir: string;
    let socketPath: string;
    let netns: string;
    let server: CniServer;
    const adds: CniAddRequest[] = [];
    const dels: CniDelRequest[] = [];
    let refuse: string | undefined;

    const conf = (o: Record<string, unknown> = {}) =>
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "ambient-pods",
        type: "ambient-cni",
        agentSocket: socketPath,
        ...o,
      });
    const env = (o: Record<string, string | undefined> = {}) => ({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "a1b2c3",
      CNI_NETNS: netns,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=a1b2c3",
      ...o,
    });
    const plugin = (e: Record<string, string | undefined>, stdin?: string) => exec(BIN, e, stdin);

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "amb-cni-conformance-"));
      socketPath = join(dir, "cni.sock");
      // ADD checks CNI_NETNS exists; any file stands in for a namespace here.
      netns = join(dir, "ambient-demo-web");
      writeFileSync(netns, "");
      server = await startCniServer({
        socketPath,
        logger,
        onAdd: async (r) => {
          if (refuse) throw new AgentError(refuse, 400);
          adds.push(r);
          return { enrolled: true };
        },
        onDel: async (r) => {
          dels.push(r);
        },
      });
    });
    afterAll(async () => {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(() => {
      adds.length = 0;
      dels.length = 0;
      refuse = undefined;
    });

    it("VERSION prints the versions it speaks", async () => {
      const r = await plugin({ CNI_COMMAND: "VERSION" });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({
        cniVersion: "1.1.0",
        supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
      });
    });

    it("ADD with prevResult tells the agent and prints prevResult unchanged", async () => {
      const r = await plugin(env(), conf({ prevResult: PREV }));
      expect(r.code).toBe(0);
      expect(r.json).toEqual(PREV);
      expect(adds).toEqual([
        {
          containerId: "a1b2c3",
          netns,
          ifName: "eth0",
          podName: "web",
          podNamespace: "demo",
          ips: ["198.19.1.5"],
        },
      ]);
    });

    it("ADD without prevResult prints an empty result in the config's version", async () => {
      const r = await plugin(env(), conf({ cniVersion: "1.1.0" }));
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: "1.1.0", interfaces: [], ips: [], dns: {} });
      expect(adds).toHaveLength(1);
    });

    it("DEL twice succeeds twice with no output", async () => {
      for (let i = 0; i < 2; i++) {
        const r = await plugin(env({ CNI_COMMAND: "DEL" }), conf({ prevResult: PREV }));
        expect(r.code).toBe(0);
        expect(r.stdout).toBe("");
      }
      expect(dels).toHaveLength(2);
      expect(dels[0]).toEqual({
        containerId: "a1b2c3",
        netns,
        ifName: "eth0",
        podName: "web",
        podNamespace: "demo",
      });
    });

    it("DEL with the agent gone (and no netns) still succeeds, saying why on stderr", async () => {
      const r = await plugin(
        env({ CNI_COMMAND: "DEL", CNI_NETNS: "" }),
        conf({ agentSocket: join(dir, "gone.sock") }),
      );
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("gone.sock");
    });

    it("CHECK with prevResult succeeds with no output", async () => {
      const r = await plugin(env({ CNI_COMMAND: "CHECK" }), conf({ prevResult: PREV }));
      expect(r).toMatchObject({ code: 0, stdout: "" });
    });

    it("STATUS (1.1.0) is ready while the agent answers, code 50 when it does not", async () => {
      const status = { CNI_COMMAND: "STATUS", CNI_PATH: "/usr/lib/cni" };
      expect(await plugin(status, conf({ cniVersion: "1.1.0" }))).toMatchObject({ code: 0, stdout: "" });
      const down = await plugin(status, conf({ cniVersion: "1.1.0", agentSocket: join(dir, "gone.sock") }));
      expect(down.code).not.toBe(0);
      expect(down.json).toMatchObject({ cniVersion: "1.1.0", code: 50 });
    });

    it("GC (1.1.0) succeeds", async () => {
      expect(await plugin({ CNI_COMMAND: "GC" }, conf({ cniVersion: "1.1.0" }))).toMatchObject({
        code: 0,
        stdout: "",
      });
    });

    it("bad JSON on stdin is code 6", async () => {
      const r = await plugin(env(), "{ this is not json");
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 6, msg: expect.any(String) });
      expect(r.json?.cniVersion).toBeTypeOf("string");
    });

    it("missing environment is code 4: no CNI_COMMAND, or ADD without CNI_NETNS", async () => {
      const none = await plugin({}, conf());
      expect(none.code).not.toBe(0);
      expect(none.json).toMatchObject({ code: 4 });
      const noNetns = await plugin(env({ CNI_NETNS: undefined }), conf());
      expect(noNetns.json).toMatchObject({ code: 4, msg: expect.stringContaining("CNI_NETNS") });
      expect(adds).toEqual([]);
    });

    it("an unknown cniVersion is code 1", async () => {
      const r = await plugin(env(), conf({ cniVersion: "42.0.0" }));
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 1, details: expect.stringContaining("42.0.0") });
    });

    it("an unreachable agent fails ADD with code 11 naming the socket", async () => {
      const gone = join(dir, "gone.sock");
      const r = await plugin(env(), conf({ agentSocket: gone, prevResult: PREV }));
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ cniVersion: "1.0.0", code: 11, msg: expect.stringContaining(gone) });
    });

    it("the agent refusing the pod fails ADD with code 100 and its reason", async () => {
      refuse = "network namespace /nope does not exist";
      const r = await plugin(env(), conf({ prevResult: PREV }));
      expect(r.json).toMatchObject({ code: 100, msg: expect.stringContaining(refuse) });
    });

    it("a pod in an excluded namespace passes through without the agent", async () => {
      const args = "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1";
      const r = await plugin(
        env({ CNI_ARGS: args }),
        conf({ prevResult: PREV, agentSocket: join(dir, "gone.sock") }),
      );
      expect(r.code).toBe(0);
      expect(r.json).toEqual(PREV);
      const viaConfig = await plugin(
        env({ CNI_ARGS: "K8S_POD_NAMESPACE=legacy;K8S_POD_NAME=x" }),
        conf({ prevResult: PREV, excludeNamespaces: ["legacy"] }),
      );
      expect(viaConfig.json).toEqual(PREV);
      expect(adds).toEqual([]);
    });

    it("the copy installed into a bin dir behaves the same", async () => {
      const binDir = join(dir, "opt-cni-bin");
      const confDir = join(dir, "net.d");
      mkdirSync(confDir);
      writeFileSync(
        join(confDir, "10-ambient-bridge.conflist"),
        JSON.stringify({ cniVersion: "1.0.0", name: "ambient-pods", plugins: [{ type: "bridge" }] }),
      );
      const { binary } = await installPlugin({ binDir, confDir, agentSocket: socketPath });
      expect((await exec(binary, { CNI_COMMAND: "VERSION" })).json).toMatchObject({ cniVersion: "1.1.0" });
      const r = await exec(binary, env(), conf({ prevResult: PREV }));
      expect(r.json).toEqual(PREV);
      expect(adds).toHaveLength(1);
    });
  },
);
