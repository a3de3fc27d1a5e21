// The kubelet stand-in against the test API server, driven with the real kubectl: it registers its
// Node (InternalIP, Ready), starts a pod applied with `kubectl apply` (an echo app on its own
// loopback address, status Running/Ready with podIP as `kubectl get -o wide` shows), writes its
// projected token bound to the pod (TokenReview names the pod), holds a pod whose ConfigMap does not
// exist yet in Pending and starts it once the ConfigMap is created, and stops a deleted pod.
// Loopback range 127.31.

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createMemoryLogger } from "@ambient/core";
import { loadKubeConfig } from "@ambient/kube/api";
import { kube, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";

const NODE_IP = "127.31.1.1";

let api: TestApiServer;
let dir: TempDir;
let kubectl: KubeClients;
let kubelet: kube.Kubelet;

beforeEach(async () => {
  api = await startTestApiServer();
  dir = await tempDir("ambient-kubelet-");
  kubectl = await kubeClients(api.kubeconfigPath);
  const kc = loadKubeConfig(api.kubeconfigPath);
  const { logger } = createMemoryLogger("debug");
  const url = new URL(api.url);
  kubelet = await kube.Kubelet.start({
    node: "node-a",
    nodeIp: NODE_IP,
    kc,
    client: new kube.KubeClient(kc),
    runtime: new kube.LoopbackRuntime({
      nodes: new Map([["node-a", NODE_IP]]),
      logLevel: "info",
      logger,
    }),
    dir: dir.path,
    apiServer: { host: url.hostname, port: Number(url.port) },
    nodePath: (path) => join(dir.path, "root", path),
    logger,
    reflector: { watchdogMs: 5_000, backoff: { initialMs: 50, maxMs: 500 } },
  });
});

afterEach(async () => {
  await kubelet?.stop();
  await kubectl?.cleanup();
  await api?.stop();
  await dir?.cleanup();
});

const podYaml = (name: string, extra = "") => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default, labels: { app: ${name} } }
spec:
  nodeName: node-a
  containers:
    - name: app
      image: example/web:1
      ports: [{ containerPort: 8080 }]
${extra}`;

async function kubectlOk(args: string[]): Promise<string> {
  const r = await kubectl.kubectl(args);
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

describe("kubelet stand-in", () => {
  it("registers its Node with its InternalIP and Ready", async () => {
    const ip = await kubectlOk([
      "get",
      "node",
      "node-a",
      "-o",
      'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}',
    ]);
    expect(ip).toBe(NODE_IP);
    const ready = await kubectlOk([
      "get",
      "node",
      "node-a",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);
    expect(ready).toBe("True");
  });

  it("starts a pod applied with kubectl, reports Running/Ready with its IP, and stops it when deleted", async () => {
    const file = join(dir.path, "web.yaml");
    await writeFile(file, podYaml("web"));
    await kubectlOk(["apply", "-f", file]);
    const ip = await eventually(async () => {
      const out = await kubectlOk([
        "get",
        "pod",
        "web",
        "-o",
        'jsonpath={.status.podIP} {.status.phase} {.status.conditions[?(@.type=="Ready")].status}',
      ]);
      const [podIp, phase, ready] = out.split(" ");
      expect(phase).toBe("Running");
      expect(ready).toBe("True");
      return podIp!;
    }, 20_000);
    expect(ip).toMatch(/^127\.31\.1\.\d+$/);
    expect(ip).not.toBe(NODE_IP);
    const wide = await kubectlOk(["get", "pod", "web", "-o", "wide"]);
    expect(wide).toMatch(
      new RegExp(`web\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${ip.replaceAll(".", "\\.")}\\s+node-a`),
    );

    const answer = await httpGet(`http://${ip}:8080/hello`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({
      pod: "web",
      namespace: "default",
      node: "node-a",
      path: "/hello",
    });

    await kubectlOk(["delete", "pod", "web"]);
    await eventually(async () => {
      await expect(fetch(`http://${ip}:8080/`)).rejects.toThrow();
    }, 20_000);
    expect(kubelet.pods().has("default/web")).toBe(false);
  });

  it("projects a service-account token bound to the pod, and waits for a missing ConfigMap before starting", async () => {
    const file = join(dir.path, "client.yaml");
    await writeFile(
      file,
      podYaml(
        "client",
        `      volumeMounts:
        - { name: token, mountPath: /var/run/secrets/tokens }
        - { name: config, mountPath: /etc/config }
  volumes:
    - name: token
      projected:
        sources: [{ serviceAccountToken: { audience: istio-ca, expirationSeconds: 43200, path: istio-token } }]
    - name: config
      configMap: { name: app-config }
`,
      ),
    );
    await kubectlOk(["apply", "-f", file]);
    // The ConfigMap does not exist: the pod stays Pending and says why.
    const why = await eventually(async () => {
      const out = await kubectlOk([
        "get",
        "pod",
        "client",
        "-o",
        "jsonpath={.status.phase}|{.status.conditions[0].message}",
      ]);
      // The API server stores a new pod as Pending with no conditions; the kubelet's reason follows.
      expect(out).toMatch(/^Pending\|/);
      expect(out).toContain('configmap "app-config" not found');
      return out;
    }, 20_000);
    expect(why).toMatch(/^Pending\|/);

    await kubectlOk(["create", "configmap", "app-config", "--from-literal=greeting=hello"]);
    await eventually(async () => {
      expect(await kubectlOk(["get", "pod", "client", "-o", "jsonpath={.status.phase}"])).toBe("Running");
    }, 20_000);
    const uid = await kubectlOk(["get", "pod", "client", "-o", "jsonpath={.metadata.uid}"]);
    const podDir = join(dir.path, "pods", `default_client_${uid}`, "volumes");
    expect(await readFile(join(podDir, "config", "greeting"), "utf8")).toBe("hello");
    const token = await readFile(join(podDir, "token", "istio-token"), "utf8");
    const review = await fetchReview(token);
    expect(review.authenticated).toBe(true);
    expect(review.user.username).toBe("system:serviceaccount:default:default");
    expect(review.user.extra["authentication.kubernetes.io/pod-name"]).toEqual(["client"]);
    expect(review.user.extra["authentication.kubernetes.io/pod-uid"]).toEqual([uid]);
  });
});

async function fetchReview(token: string) {
  const client = new kube.KubeClient(loadKubeConfig(api.kubeconfigPath));
  const answer = await client.request<{
    status: { authenticated: boolean; user: { username: string; extra: Record<string, string[]> } };
  }>("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenReview",
    spec: { token, audiences: ["istio-ca"] },
  });
  return answer.status;
}
