// API server faults under traffic, on the loopback cluster: a request from demo/client to web every
// 100 ms never fails while the watches of the control plane and the kubelets go silent (watchdog),
// expire (410 → relist) or the API server restarts with downtime; and what changed meanwhile (a pod
// created, an AuthorizationPolicy written while the server was down, as through another replica of
// the same etcd) is applied afterwards. The downtime is AMBIENT_TEST_KUBE_DOWNTIME_MS (default 5 s:
// the code path of a minute's downtime is the same — reflectors back off to 1 s here and resume
// from their version; run once with 60000 by hand). Loopback range 127.33.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMemoryLogger } from "@ambient/core";
import { httpGetViaSocks, kube } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/cluster", import.meta.url));
const DOWNTIME_MS = Number(process.env.AMBIENT_TEST_KUBE_DOWNTIME_MS ?? 5_000);
/** Above the watchdog (10 s) plus a backoff step: a change is applied well within this. */
const RECOVERY_MS = 30_000 + DOWNTIME_MS;
const WEB_HOST = "web.demo.svc.cluster.local";

let state: TempDir;
let cluster: kube.KubeCluster;
let kubectl: KubeClients;
let traffic: { outcomes: { at: number; ok: boolean; why?: string }[]; stop(): Promise<void> };

async function k(...args: string[]): Promise<string> {
  const r = await kubectl.kubectl(args);
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const status = (fromIp: string, path = "/") =>
  httpGetViaSocks(fromIp, WEB_HOST, 80, path).then(
    (r) => r.status,
    (err: Error) => err.message,
  );

const pod = (name: string, sa: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "demo" },
  spec: {
    nodeName: "node-2",
    serviceAccountName: sa,
    containers: [{ name: "curl", image: "curlimages/curl" }],
  },
});

async function podIp(name: string): Promise<string> {
  return eventually(async () => {
    const ip = await k("get", "pod", name, "-n", "demo", "-o", "jsonpath={.status.podIP}");
    expect(ip).toMatch(/^127\.33\./);
    return ip;
  }, RECOVERY_MS);
}

function steadyTraffic(fromIp: string) {
  const outcomes: { at: number; ok: boolean; why?: string }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      const s = await status(fromIp, "/steady");
      outcomes.push({ at, ok: s === 200, ...(s !== 200 ? { why: String(s) } : {}) });
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    outcomes,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

beforeAll(async () => {
  state = await tempDir("ambient-kube-faults-");
  const { logger } = createMemoryLogger("info");
  cluster = await kube.KubeCluster.start({
    stateDir: state.path,
    dir: FIXTURE,
    loopbackNet: "127.33",
    logLevel: "info",
    logger,
    reflector: { watchdogMs: 10_000, backoff: { initialMs: 100, maxMs: 1_000 } },
  });
  kubectl = await kubeClients(cluster.kubeconfigPath);
  await cluster.podsReady(60_000);
  await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
  const sa = join(state.path, "other.yaml");
  await writeFile(
    sa,
    JSON.stringify({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "other", namespace: "demo" },
    }),
  );
  await k("apply", "-f", sa);
  const client = await podIp("client");
  await eventually(async () => expect(await status(client)).toBe(200), 20_000);
  traffic = steadyTraffic(client);
}, 90_000);

afterAll(async () => {
  await traffic?.stop();
  await kubectl?.cleanup();
  await cluster?.stop();
  await state?.cleanup();
}, 30_000);

/** The steady requests since `from` all succeeded (and there were some). */
function flowedSince(from: number): void {
  const since = traffic.outcomes.filter((o) => o.at >= from);
  expect(since.length).toBeGreaterThan(0);
  expect(since.filter((o) => !o.ok)).toEqual([]);
}

describe("API server faults with traffic flowing (loopback cluster)", () => {
  it("silent watches: a pod created meanwhile starts and is enrolled once the watchdog resumes the watches", async () => {
    const from = Date.now();
    cluster.api.faults.stallWatches();
    const file = join(state.path, "during-stall.yaml");
    await writeFile(file, JSON.stringify(pod("during-stall", "other")));
    await k("apply", "-f", file);
    // The open watches stay dead (a dropped connection); new ones are healthy.
    cluster.api.faults.resumeWatches();
    const ip = await podIp("during-stall");
    await eventually(async () => expect(await status(ip)).toBe(200), RECOVERY_MS);
    flowedSince(from);
  });

  it("410 Gone: watches that missed a change end after a compaction, relist, and apply it", async () => {
    const from = Date.now();
    // The watches miss the change (silent), then end with the history compacted: resuming from
    // their version answers 410, and only a relist shows the pod.
    cluster.api.faults.stallWatches();
    const file = join(state.path, "during-410.yaml");
    await writeFile(file, JSON.stringify(pod("during-410", "client")));
    await k("apply", "-f", file);
    cluster.api.store.compact();
    cluster.api.faults.resumeWatches();
    cluster.api.faults.expireWatches();
    const ip = await podIp("during-410");
    await eventually(async () => expect(await status(ip)).toBe(200), RECOVERY_MS);
    flowedSince(from);
  });

  it(
    `an API server restart with ${DOWNTIME_MS} ms of downtime: traffic flows, and the changes written meanwhile are applied after`,
    async () => {
      const from = Date.now();
      const stallIp = await podIp("during-stall");
      expect(await status(stallIp)).toBe(200);
      const restarted = cluster.api.restart(DOWNTIME_MS);
      // While it is down, another replica of the same etcd takes writes: a pod and a policy.
      const { objects, registry } = cluster.api;
      objects.create(registry.byKind("v1", "Pod")!, "demo", pod("during-restart", "client"));
      objects.create(registry.byKind("security.istio.io/v1", "AuthorizationPolicy")!, "demo", {
        metadata: { name: "deny-other", namespace: "demo" },
        spec: {
          selector: { matchLabels: { app: "web" } },
          action: "DENY",
          rules: [{ from: [{ source: { principals: ["cluster.local/ns/demo/sa/other"] } }] }],
        },
      });
      await restarted;
      const ip = await podIp("during-restart");
      await eventually(async () => expect(await status(ip)).toBe(200), RECOVERY_MS);
      await eventually(async () => expect(await status(stallIp)).not.toBe(200), RECOVERY_MS);
      flowedSince(from);
      const during = traffic.outcomes.filter((o) => o.at >= from).length;
      console.info(`API server restart with ${DOWNTIME_MS} ms downtime: ${during} requests, none failed`);
    },
    60_000 + 3 * DOWNTIME_MS,
  );
});
