// ztunnel's DNS proxy with real capture: pods in network namespaces with a Kubernetes-style
// resolv.conf (nameserver 10.96.0.10, the namespace's search list), the agent's DNS capture sending
// their port 53 to ztunnel's 15053 inside the pod. Unmodified `dig` (UDP and TCP) and glibc's
// `getent` resolve the mesh's names. Root only; needs the built packages (`pnpm build`) and dig.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "@ambient/core";
import { NetnsMesh, netns } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasCommand, isRoot, until } from "../utils/netns.js";

const hasDig = hasCommand("dig", ["-v"]);
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PREFIX = "ambt-dns-";
const WILDCARD_VIP = "240.240.7.9";

const MANIFESTS = `apiVersion: v1
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
kind: Pod
metadata: { name: sleep, namespace: demo, labels: { app: sleep } }
spec:
  nodeName: node-a
  containers: [{ name: sleep, image: curlimages/curl }]
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: demo, labels: { app: web } }
spec:
  nodeName: node-a
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
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: wild, namespace: demo }
spec:
  hosts: ["*.wild.test"]
  addresses: [${WILDCARD_VIP}]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  location: MESH_EXTERNAL
  resolution: NONE
`;

let mesh: NetnsMesh;
let dir: string;

async function inPod(args: string[]): Promise<string> {
  const { stdout } = await netns.run("ip", ["netns", "exec", mesh.podNetns("demo", "sleep"), ...args]);
  return stdout.trim();
}

describe.skipIf(!isRoot || !hasDig)(
  "DNS proxy with capture in network namespaces (root and dig; skipped otherwise)",
  () => {
    let vip: string;

    beforeAll(async () => {
      for (const bin of ["controlplane", "cni", "ztunnel"]) {
        if (!existsSync(join(REPO, "packages", bin, "dist", "index.js")))
          throw new Error(`packages/${bin}/dist is missing: run \`pnpm build\` first`);
      }
      dir = mkdtempSync(join(tmpdir(), "ambt-dns-manifests-"));
      writeFileSync(join(dir, "mesh.yaml"), MANIFESTS);
      mesh = await NetnsMesh.start({
        dir,
        prefix: PREFIX,
        logLevel: "info",
        logger: createLogger({ level: "warn" }),
        // Nothing listens there: forwarded names fail at once (SERVFAIL), mesh names never get there.
        dnsProxy: { upstream: "127.0.0.1:9" },
      });
      const hosts = readFileSync(join(netns.ETC_NETNS_DIR, mesh.podNetns("demo", "sleep"), "hosts"), "utf8");
      vip = hosts
        .split("\n")
        .find((l) => l.includes("web.demo.svc.cluster.local"))
        ?.split(/\s+/)[0] as string;
      // The pod's listeners (15053 among them) open once xDS and the agent agree on the pod.
      await until("the DNS proxy to answer", () =>
        inPod(["dig", "+short", "+time=1", "+tries=1", "web.demo.svc.cluster.local"]),
      );
    }, 180_000);

    afterAll(async () => {
      await mesh?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it("the pod's port 53 is captured to 15053, UDP and TCP", async () => {
      const saved = await inPod(["iptables-save", "-t", "nat"]);
      expect(saved).toContain(
        "-p udp -m udp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053",
      );
      expect(saved).toContain(
        "-p tcp -m tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053",
      );
      expect(
        readFileSync(join(netns.ETC_NETNS_DIR, mesh.podNetns("demo", "sleep"), "resolv.conf"), "utf8"),
      ).toContain("nameserver 10.96.0.10");
    });

    it("an unmodified dig resolves a Service to its VIP over UDP and over TCP, and by its short name", async () => {
      expect(vip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(await inPod(["dig", "+short", "web.demo.svc.cluster.local"])).toBe(vip);
      expect(await inPod(["dig", "+tcp", "+short", "web.demo.svc.cluster.local"])).toBe(vip);
      expect(await inPod(["dig", "+search", "+short", "web"])).toBe(vip);
      const aaaa = await inPod(["dig", "AAAA", "web.demo.svc.cluster.local"]);
      expect(aaaa).toContain("status: NOERROR");
      expect(aaaa).toContain("ANSWER: 0");
    });

    it("glibc's getent resolves a wildcard ServiceEntry host through the search list", async () => {
      expect(await inPod(["getent", "hosts", "api.wild.test"])).toMatch(
        new RegExp(`^${WILDCARD_VIP.replaceAll(".", "\\.")}\\s+api\\.wild\\.test`),
      );
    });

    it("a name the mesh does not know goes upstream; an unreachable upstream is SERVFAIL", async () => {
      expect(await inPod(["dig", "+time=2", "+tries=1", "nothing.example.org"])).toContain(
        "status: SERVFAIL",
      );
    });
  },
);
