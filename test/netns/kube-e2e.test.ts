// Issue #11 end to end: the cluster of `ambientctl up --kube --netns` (KubeCluster) with the real
// kubectl. Every component runs in Kubernetes mode as a pod the kubelet stand-in started: the control
// plane (TLS 15012, TokenReview), per node the CNI agent (pods/status marks) and ztunnel (projected
// token, root ConfigMap); app pods are network namespaces wired by the real CNI chain. Labelling a
// namespace enrols its running pods (annotation visible with kubectl, only HBONE on the node link,
// both SPIFFE identities in the metrics); unlabelling unenrols; a pod applied later starts enrolled;
// an AuthorizationPolicy applied with kubectl denies and its deletion allows again.
// Root only; needs the built packages (`pnpm build`).

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "@ambient/core";
import { kube, netns } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { DEMO_CLIENT_ID, DEMO_WEB_ID, type KubeClients, kubeClients } from "../utils/kube.js";
import { metricValue } from "../utils/mesh.js";

const isRoot = process.getuid?.() === 0;
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = join(REPO, "test", "kube", "fixtures", "cluster");
const PREFIX = "ambt-kube-";
const WEB_URL = "http://web.demo.svc.cluster.local";
/** Labels reach the agent and the control plane through their watches within seconds. */
const PROPAGATION_MS = 30_000;

let state: TempDir;
let cluster: kube.KubeCluster;
let kubectl: KubeClients;

async function k(...args: string[]): Promise<string> {
  const r = await kubectl.kubectl(args);
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const podNetns = (name: string) => `${PREFIX}demo-${name}`;
const annotation = (name: string) =>
  k(
    "get",
    "pod",
    name,
    "-n",
    "demo",
    "-o",
    "jsonpath={.metadata.annotations.ambient\\.istio\\.io/redirection}",
  );

/** An unmodified curl in a netns: the HTTP status, or curl's error. */
async function curl(netnsName: string, url: string): Promise<number | string> {
  try {
    const { stdout } = await netns.run("ip", [
      "netns",
      "exec",
      netnsName,
      "curl",
      "-sS",
      "-m",
      "3",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      url,
    ]);
    return Number(stdout);
  } catch (err) {
    return (err as Error).message;
  }
}

async function metric(node: string, name: string, labels: Record<string, string>): Promise<number> {
  const n = cluster.topology!.node(node);
  const { stdout } = await netns.run("ip", [
    "netns",
    "exec",
    n.netns,
    "curl",
    "-sS",
    `http://${n.ip}:15020/metrics`,
  ]);
  return metricValue(stdout, name, labels);
}

describe.skipIf(!isRoot)(
  "issue #11: the cluster on network namespaces with kubectl (needs root; skipped otherwise)",
  () => {
    beforeAll(async () => {
      for (const bin of ["controlplane", "cni", "ztunnel", "testbed"]) {
        if (!existsSync(join(REPO, "packages", bin, "dist", "index.js")))
          throw new Error(
            `packages/${bin}/dist is missing: the netns cluster runs the built binaries; run \`pnpm build\``,
          );
      }
      state = await tempDir("ambient-kube-netns-");
      cluster = await kube.KubeCluster.start({
        stateDir: state.path,
        dir: FIXTURE,
        netns: { prefix: PREFIX },
        logLevel: "info",
        logger: createLogger({ level: "warn" }),
      });
      kubectl = await kubeClients(cluster.kubeconfigPath);
      await cluster.podsReady(120_000);
    }, 180_000);

    afterAll(async () => {
      await kubectl?.cleanup();
      await cluster?.stop();
      await state?.cleanup();
      expect((await netns.listNetns()).filter((n) => n.startsWith(PREFIX))).toEqual([]);
    }, 60_000);

    it("the mesh runs as pods: the control plane, and per node the CNI agent and ztunnel, each Ready", async () => {
      const wide = await k("get", "pods", "-n", "istio-system", "-o", "wide");
      for (const name of [
        "istiod",
        "ztunnel-node-1",
        "ztunnel-node-2",
        "istio-cni-node-node-1",
        "istio-cni-node-node-2",
      ])
        expect(wide).toMatch(new RegExp(`${name}\\s+1/1\\s+Running`));
      expect(await annotation("client")).toBe("");
    });

    it("labelling the namespace enrols its running pods: annotation, only HBONE on the node link, both identities in metrics", async () => {
      await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
      await eventually(async () => {
        expect(await annotation("client")).toBe("enabled");
        expect(await annotation("web")).toBe("enabled");
      }, PROPAGATION_MS);
      await eventually(
        async () => expect(await curl(podNetns("client"), `${WEB_URL}/warm-up`)).toBe(200),
        PROPAGATION_MS,
      );

      const node1 = cluster.topology!.node("node-1");
      const pcap = join(state.path, "node-1-link.pcap");
      const dump = await netns.spawnInNetns(
        node1.netnsPath,
        "tcpdump",
        ["-i", node1.linkIfName, "-n", "--immediate-mode", "-U", "-w", pcap, "tcp"],
        { logFile: join(state.path, "tcpdump.log") },
      );
      await dump.waitForLog(/listening on/);
      const marker = `plaintext-marker-${randomBytes(6).toString("hex")}`;
      for (let i = 0; i < 3; i++)
        expect(await curl(podNetns("client"), `${WEB_URL}/${marker}/${i}`)).toBe(200);
      const read = async () => (await netns.run("tcpdump", ["-nn", "-r", pcap])).stdout;
      await eventually(async () => expect(await read()).toMatch(/\.15008[ :]/), 10_000);
      await dump.stop();

      const raw = readFileSync(pcap);
      expect(raw.includes(marker)).toBe(false);
      expect(raw.includes("GET /")).toBe(false);
      // Besides HBONE, node-1's link carries the control plane's own traffic: ztunnel-node-2 to
      // istiod (15012) and the agents and the control plane to the API server (6443).
      const packets = (await read()).split("\n").filter(Boolean);
      const dataPlane = packets.filter((l) => !/\.(15012|6443)[ :]/.test(l));
      expect(dataPlane.length).toBeGreaterThan(0);
      for (const l of dataPlane) expect(l).toMatch(/\.15008[ :]/);

      const labels = {
        source_principal: DEMO_CLIENT_ID,
        destination_principal: DEMO_WEB_ID,
        connection_security_policy: "mutual_tls",
      };
      expect(
        await metric("node-1", "istio_tcp_connections_opened_total", { ...labels, reporter: "source" }),
      ).toBeGreaterThanOrEqual(3);
      expect(
        await metric("node-2", "istio_tcp_connections_opened_total", { ...labels, reporter: "destination" }),
      ).toBeGreaterThanOrEqual(3);
    });

    it("unlabelling unenrols the running pods (annotation removed, traffic no longer through ztunnel)", async () => {
      const through = () =>
        metric("node-2", "istio_tcp_connections_opened_total", {
          reporter: "destination",
          source_principal: DEMO_CLIENT_ID,
        });
      await k("label", "namespace", "demo", "istio.io/dataplane-mode-");
      await eventually(async () => {
        expect(await annotation("client")).toBe("");
        expect(await annotation("web")).toBe("");
      }, PROPAGATION_MS);
      const before = await through();
      // kube-proxy's DNAT now carries the VIP; ztunnel sees nothing.
      await eventually(
        async () => expect(await curl(podNetns("client"), `${WEB_URL}/plain`)).toBe(200),
        PROPAGATION_MS,
      );
      expect(await through()).toBe(before);
      await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
      await eventually(async () => expect(await annotation("client")).toBe("enabled"), PROPAGATION_MS);
    });

    it("a pod applied later with kubectl starts enrolled and reaches web through the mesh", async () => {
      const file = join(state.path, "late.yaml");
      await writeFile(
        file,
        `apiVersion: v1
kind: Pod
metadata: { name: late, namespace: demo }
spec:
  nodeName: node-1
  serviceAccountName: client
  containers: [{ name: curl, image: curlimages/curl }]
`,
      );
      await k("apply", "-f", file);
      await eventually(async () => expect(await annotation("late")).toBe("enabled"), PROPAGATION_MS);
      const before = await metric("node-2", "istio_tcp_connections_opened_total", {
        reporter: "destination",
        source_principal: DEMO_CLIENT_ID,
      });
      await eventually(
        async () => expect(await curl(podNetns("late"), `${WEB_URL}/late`)).toBe(200),
        PROPAGATION_MS,
      );
      expect(
        await metric("node-2", "istio_tcp_connections_opened_total", {
          reporter: "destination",
          source_principal: DEMO_CLIENT_ID,
        }),
      ).toBeGreaterThan(before);
    });

    it("an AuthorizationPolicy applied with kubectl denies within seconds; deleting it allows again", async () => {
      const file = join(state.path, "deny.yaml");
      await writeFile(
        file,
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: demo }
spec:
  selector: { matchLabels: { app: web } }
  action: DENY
  rules: [{ from: [{ source: { principals: [cluster.local/ns/demo/sa/client] } }] }]
`,
      );
      await k("apply", "-f", file);
      await eventually(
        async () => expect(await curl(podNetns("client"), `${WEB_URL}/denied`)).not.toBe(200),
        PROPAGATION_MS,
      );
      await k("delete", "-f", file);
      await eventually(
        async () => expect(await curl(podNetns("client"), `${WEB_URL}/allowed`)).toBe(200),
        PROPAGATION_MS,
      );
    });
  },
);
