#!/usr/bin/env node
// Control plane scale benchmark: generates a folder with N pods, services and policies, starts
// ambient-controlplane on it as a child process, and measures with a Delta ADS client:
//   - time from process start to the first full push (every Address and Authorization received)
//   - latency of one pod edit reaching the connected client (file write → resource applied)
//   - peak RSS of the control plane (VmHWM)
// `--source kube` loads the same objects into the test API server (in this process) instead and
// runs the control plane in Kubernetes mode against it: TLS on the gRPC port, the client with a
// service-account token and the root read from ConfigMap istio-ca-root-cert, edits as API patches.
// Usage: node bench/controlplane/run.mjs [--source folder|kube] [--pods 10000] [--services 1000] [--policies 500] [--edits 10]
//        [--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]   (flags for the control plane's node; NODE_OPTIONS refuses --cpu-prof)
// Needs a build first (`pnpm build`); `pnpm bench:controlplane` does both.

import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, createLogger, DeltaAdsClient } from "@ambient/core";
import { credentials } from "@grpc/grpc-js";
import { parseAllDocuments } from "yaml";
import { freePort } from "../lib/proc.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith("--")) args[a.slice(2)] = process.argv[++i];
}
const PODS = Number(args.pods ?? 10_000);
const SERVICES = Number(args.services ?? 1_000);
const POLICIES = Number(args.policies ?? 500);
const EDITS = Number(args.edits ?? 10);
const NAMESPACES = Math.max(1, Math.round(SERVICES / 10));
const NODES = 20;
const SOURCE = args.source ?? "folder";
if (SOURCE !== "folder" && SOURCE !== "kube") throw new Error(`--source: "${SOURCE}" is not folder or kube`);

const out = join(here, "out");
const manifests = join(out, "manifests");
const state = join(out, "state");
rmSync(out, { recursive: true, force: true });
mkdirSync(manifests, { recursive: true });

// ---- generate ----
const ip = (base, n) => `127.${base}.${(n >> 8) & 255}.${n & 255}`;
function podDoc(ns, i, app, version) {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${app}-${i}
  namespace: ${ns}
  labels: { app: ${app}, version: ${version} }
  ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: ${app}-7d4f9c, uid: x, controller: true }]
spec:
  nodeName: node-${i % NODES}
  serviceAccountName: ${app}
  containers: [{ name: app, image: app, ports: [{ name: http, containerPort: 8080 }] }]
status:
  phase: Running
  podIP: ${ip(20, i)}
  conditions: [{ type: Ready, status: "True" }]
`;
}
const nsFiles = new Map();
let podIndex = 0;
let svcIndex = 0;
let polIndex = 0;
const podsPerNs = Math.ceil(PODS / NAMESPACES);
const svcsPerNs = Math.ceil(SERVICES / NAMESPACES);
const polsPerNs = Math.ceil(POLICIES / NAMESPACES);
const nodeDocs = [];
for (let n = 0; n < NODES; n++)
  nodeDocs.push(
    `apiVersion: v1\nkind: Node\nmetadata: { name: node-${n} }\nstatus: { addresses: [{ type: InternalIP, address: ${ip(19, n + 1)} }] }\n`,
  );
writeFileSync(join(manifests, "00-nodes.yaml"), nodeDocs.join("---\n"));
for (let k = 0; k < NAMESPACES; k++) {
  const ns = `ns-${String(k).padStart(3, "0")}`;
  const docs = [
    `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${ns}, labels: { istio.io/dataplane-mode: ambient } }\n`,
  ];
  const pods = [];
  for (let j = 0; j < podsPerNs && podIndex < PODS; j++, podIndex++) {
    const app = `app-${j % svcsPerNs}`;
    pods.push({ i: podIndex, app });
    docs.push(podDoc(ns, podIndex, app, "v1"));
  }
  for (let j = 0; j < svcsPerNs && svcIndex < SERVICES; j++, svcIndex++) {
    docs.push(
      `apiVersion: v1\nkind: Service\nmetadata: { name: app-${j}, namespace: ${ns} }\nspec:\n  clusterIP: ${ip(30, svcIndex)}\n  selector: { app: app-${j} }\n  ports: [{ name: http, port: 80, targetPort: http }]\n`,
    );
  }
  for (let j = 0; j < polsPerNs && polIndex < POLICIES; j++, polIndex++) {
    docs.push(
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-${j}, namespace: ${ns} }\nspec:\n  selector: { matchLabels: { app: app-${j} } }\n  rules:\n    - from: [{ source: { principals: ["cluster.local/ns/${ns}/sa/app-${(j + 1) % svcsPerNs}"] } }]\n      to: [{ operation: { ports: ["8080"] } }]\n`,
    );
  }
  nsFiles.set(ns, { docs, pods });
  writeFileSync(join(manifests, `${ns}.yaml`), docs.join("---\n"));
}

// ---- the Kubernetes API (--source kube) ----
const api = SOURCE === "kube" ? await loadApiServer() : undefined;

// ---- run ----
const port = await freePort();
const sourceArgs = api
  ? [
      "--kubeconfig",
      api.server.kubeconfigPath,
      "--tls-listen",
      `127.0.0.1:${port}`,
      "--serving-ips",
      "127.0.0.1",
    ]
  : ["--config-dir", manifests, "--listen", `127.0.0.1:${port}`];
const loadAtStart = loadavg()[0];
const started = performance.now();
const child = spawn(
  process.execPath,
  [
    ...(args["node-args"] ? args["node-args"].split(" ").filter(Boolean) : []),
    join(root, "packages/controlplane/bin/ambient-controlplane.js"),
    ...sourceArgs,
    "--state-dir",
    state,
    "--log-level",
    "info",
  ],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, KUBECONFIG: "" } },
);
let firstPublishMs;
/** The control plane's own `ms` of each publish after the first full one: an edit's CPU side. */
const editPublishMs = [];
// The control plane's log is kept in out/controlplane.log (with --keep) to see where time went.
const cpLog = createWriteStream(join(out, "controlplane.log"));
child.stdout.setEncoding("utf8").on("data", (chunk) => {
  cpLog.write(chunk);
  for (const line of chunk.split("\n")) {
    if (!line.includes("configuration published")) continue;
    const published = JSON.parse(line);
    if (firstPublishMs !== undefined) {
      editPublishMs.push(published.ms);
      continue;
    }
    // The API source publishes while its kinds are still listing (before the port opens): the
    // figure is the first publish holding every pod.
    if (published.workloads >= PODS) firstPublishMs = published.ms;
  }
});

const counts = { address: new Map(), authz: new Map() };
const waiters = [];
const notify = () => {
  for (const w of waiters.splice(0)) w();
};
// A proxy in a pod: its token, and the root from the ConfigMap once the control plane published it.
const tls = api ? { token: await api.token(), root: await api.rootCert() } : undefined;
const client = new DeltaAdsClient({
  address: `127.0.0.1:${port}`,
  ...(tls
    ? {
        credentials: credentials.createSsl(Buffer.from(tls.root)),
        channelOptions: { "grpc.ssl_target_name_override": "istiod.istio-system.svc" },
        metadata: { authorization: `Bearer ${tls.token}` },
      }
    : {}),
  node: { id: "bench~127.0.0.1~bench", cluster: "bench", metadata: {} },
  logger: createLogger({ level: "silent" }),
  backoff: { initialMs: 50, maxMs: 200 },
  handlers: [
    {
      typeUrl: ADDRESS_TYPE_URL,
      decode: (_n, b) => b,
      apply: ({ upserts, removes }) => {
        for (const [n, v] of upserts) counts.address.set(n, v);
        for (const n of removes) counts.address.delete(n);
        notify();
      },
    },
    {
      typeUrl: AUTHORIZATION_TYPE_URL,
      decode: (_n, b) => b,
      apply: ({ upserts, removes }) => {
        for (const [n, v] of upserts) counts.authz.set(n, v);
        for (const n of removes) counts.authz.delete(n);
        notify();
      },
    },
  ],
});
client.start();
const expectedAddresses = PODS + SERVICES;
await until(() => counts.address.size >= expectedAddresses && counts.authz.size >= POLICIES, 120_000);
const firstFullPushMs = performance.now() - started;

// One pod edit at a time: change a label, wait until that workload's new version arrives.
const latencies = [];
const nsNames = [...nsFiles.keys()];
for (let e = 0; e < EDITS; e++) {
  const ns = nsNames[e % nsNames.length];
  const { docs, pods } = nsFiles.get(ns);
  const target = pods[e % pods.length];
  const uid = `Kubernetes//Pod/${ns}/${target.app}-${target.i}`;
  const before = counts.address.get(uid);
  docs[1 + pods.indexOf(target)] = podDoc(ns, target.i, target.app, `v${e + 2}`);
  const t0 = performance.now();
  if (api) api.editPod(ns, `${target.app}-${target.i}`, `v${e + 2}`);
  else writeFileSync(join(manifests, `${ns}.yaml`), docs.join("---\n"));
  await until(() => counts.address.get(uid) !== before, 30_000);
  latencies.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 150));
}
latencies.sort((a, b) => a - b);
const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
client.close();
child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));
await api?.server.stop();

const median = latencies[Math.floor(latencies.length / 2)];
editPublishMs.sort((a, b) => a - b);
const result = {
  source: SOURCE,
  ...(api ? { apiLoadMs: api.loadMs } : {}),
  pods: PODS,
  services: SERVICES,
  policies: POLICIES,
  translateAndPublishMs: firstPublishMs,
  firstFullPushMs: Math.round(firstFullPushMs),
  podEditToClientMs: {
    median: Math.round(median),
    max: Math.round(latencies.at(-1)),
    samples: latencies.length,
  },
  // Status writes in Kubernetes mode publish again too: every publish after the first full one.
  editPublishMs: { median: editPublishMs[Math.floor(editPublishMs.length / 2)], max: editPublishMs.at(-1) },
  peakRssMiB: Math.round(hwmKb / 1024),
  // The machine's 1-minute load average at the start and the end: figures from a shared machine
  // compare only at similar load.
  load: [loadAtStart, loadavg()[0]].map((l) => Math.round(l * 10) / 10),
};
console.log(JSON.stringify(result, null, 2));
console.log(
  `| ${SOURCE} | ${PODS} pods / ${SERVICES} svc / ${POLICIES} pol | ${result.firstFullPushMs} ms | ${result.translateAndPublishMs} ms | ${result.podEditToClientMs.median} ms (max ${result.podEditToClientMs.max}) | ${result.editPublishMs.median} ms | ${result.peakRssMiB} MiB |`,
);
if (!args.keep) rmSync(out, { recursive: true, force: true });

/**
 * The test API server with the generated objects, written through its object service (the API's
 * semantics, without 10,000 HTTP round trips): Istio's CRDs first, pods' status as the kubelet
 * would set it, and the ztunnel account whose token the client sends.
 */
async function loadApiServer() {
  const { istioCrds, startTestApiServer } = await import("@ambient/testbed");
  const t0 = performance.now();
  const server = await startTestApiServer({ objects: istioCrds() });
  const objects = server.objects;
  const typeOf = (o) => server.registry.byKind(o.apiVersion, o.kind);
  const create = (o) => objects.create(typeOf(o), o.metadata.namespace, o);
  create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } });
  const ztunnel = create({
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "ztunnel", namespace: "istio-system" },
  });
  const podType = server.registry.byKind("v1", "Pod");
  for (const file of ["00-nodes.yaml", ...[...nsFiles.keys()].map((ns) => `${ns}.yaml`)]) {
    for (const doc of parseAllDocuments(readFileSync(join(manifests, file), "utf8"))) {
      const obj = doc.toJS();
      // The API server allocates cluster IPs from its own range (10.96.0.0/12).
      if (obj.kind === "Service") delete obj.spec.clusterIP;
      create(obj);
      if (obj.kind === "Pod")
        objects.patch(
          podType,
          obj.metadata.namespace,
          obj.metadata.name,
          "merge",
          { status: obj.status },
          {
            subresource: "status",
          },
        );
    }
  }
  const loadMs = Math.round(performance.now() - t0);
  const lookup = (kind, ns, name) => {
    try {
      return objects.get(server.registry.byKind("v1", kind), ns, name);
    } catch {
      return undefined;
    }
  };
  return {
    server,
    loadMs,
    token: async () =>
      (await server.tokens.request(ztunnel, { spec: { audiences: ["istio-ca"] } }, lookup)).status.token,
    rootCert: async () => {
      const cmType = server.registry.byKind("v1", "ConfigMap");
      for (;;) {
        try {
          return objects.get(cmType, "istio-system", "istio-ca-root-cert").data["root-cert.pem"];
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    },
    editPod: (ns, name, version) =>
      objects.patch(podType, ns, name, "merge", { metadata: { labels: { version } } }),
  };
}

function until(cond, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`timed out; have ${counts.address.size} addresses, ${counts.authz.size} policies`)),
      timeoutMs,
    );
    const check = () => {
      if (cond()) {
        clearTimeout(timer);
        resolve();
      } else waiters.push(check);
    };
    check();
  });
}
