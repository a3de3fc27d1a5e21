// The ingress gateway with real capture: pods in network namespaces, the gateway (the waypoint
// binary with --ingress) in the pod an Istio Gateway selects, and an unmodified curl in a pod
// outside the mesh calling it over HTTPS, as a user outside the cluster would. The request reaches
// the captured app over HBONE with the gateway's identity, which the app's policy requires. Root
// only; needs the built packages (`pnpm build`) and curl.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "@ambient/core";
import { apiserver, NetnsMesh, netns } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasCommand, isRoot, until } from "../utils/netns.js";

const hasCurl = hasCommand("curl");
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PREFIX = "ambt-ing-";

function manifests(certPem: string, keyPem: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return `apiVersion: v1
kind: Node
metadata: { name: node-a }
---
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels: { istio.io/dataplane-mode: ambient }
---
apiVersion: v1
kind: Namespace
metadata: { name: outside }
---
apiVersion: v1
kind: Namespace
metadata: { name: istio-system }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: demo, labels: { app: web } }
spec:
  nodeName: node-a
  serviceAccountName: web
  containers:
    - name: web
      image: example/web
      ports: [{ name: http, containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: outsider, namespace: outside }
spec:
  nodeName: node-a
  containers: [{ name: curl, image: curlimages/curl }]
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway
  namespace: istio-system
  labels: { istio: ingressgateway }
spec:
  nodeName: node-a
  serviceAccountName: istio-ingressgateway
  containers: [{ name: istio-proxy, image: ambient/waypoint }]
---
apiVersion: v1
kind: Secret
metadata: { name: web-cert, namespace: istio-system }
type: kubernetes.io/tls
data:
  tls.crt: ${b64(certPem)}
  tls.key: ${b64(keyPem)}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: web-gateway, namespace: demo }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [web.example.com]
      tls: { mode: SIMPLE, credentialName: web-cert }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: demo }
spec:
  hosts: [web.example.com]
  gateways: [web-gateway]
  http: [{ route: [{ destination: { host: web, port: { number: 80 } } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web-from-gateway, namespace: demo }
spec:
  selector: { matchLabels: { app: web } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: [cluster.local/ns/istio-system/sa/istio-ingressgateway] } }] }]
`;
}

let mesh: NetnsMesh;
let dir: string;
let caFile: string;

async function inOutsider(args: string[]): Promise<string> {
  const { stdout } = await netns.run("ip", ["netns", "exec", mesh.podNetns("outside", "outsider"), ...args]);
  return stdout;
}

describe.skipIf(!isRoot || !hasCurl)(
  "ingress gateway in network namespaces (root and curl; skipped otherwise)",
  () => {
    let gatewayIp: string;

    beforeAll(async () => {
      for (const bin of ["controlplane", "cni", "ztunnel", "waypoint"]) {
        if (!existsSync(join(REPO, "packages", bin, "dist", "index.js")))
          throw new Error(`packages/${bin}/dist is missing: run \`pnpm build\` first`);
      }
      const pki = await apiserver.createPki({ ips: [], dns: ["web.example.com"] });
      dir = mkdtempSync(join(tmpdir(), "ambt-ing-manifests-"));
      caFile = join(dir, "ca.pem");
      writeFileSync(caFile, pki.caPem);
      writeFileSync(join(dir, "mesh.yaml"), manifests(pki.serverCertPem, pki.serverKeyPem));
      mesh = await NetnsMesh.start({
        dir,
        prefix: PREFIX,
        logLevel: "info",
        logger: createLogger({ level: "warn" }),
      });
      gatewayIp = mesh.summary().pods.find((p) => p.name === "istio-ingressgateway")?.ip as string;
    }, 180_000);

    afterAll(async () => {
      await mesh?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it("curl outside the mesh reaches the captured app through the gateway over HTTPS", async () => {
      expect(gatewayIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const curl = [
        "curl",
        "-sS",
        "--max-time",
        "5",
        "--resolve",
        `web.example.com:8443:${gatewayIp}`,
        "--cacert",
        caFile,
        "https://web.example.com:8443/hello",
      ];
      const body = await until("the gateway to answer", () => inOutsider(curl));
      // web's policy admits only the gateway's identity: the echo app answering proves it arrived so.
      expect(JSON.parse(body)).toMatchObject({ pod: "web", namespace: "demo", path: "/hello" });
    });

    it("the app itself refuses the same client without the gateway (no identity)", async () => {
      const webIp = mesh.summary().pods.find((p) => p.name === "web")?.ip as string;
      const direct = await inOutsider([
        "curl",
        "-sS",
        "--max-time",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `http://${webIp}:8080/`,
      ]).catch((err: { stdout?: string }) => err.stdout ?? "refused");
      expect(direct).not.toBe("200");
    });
  },
);
