// ambientctl xds against a real control plane: tables and JSON carry what the control plane serves.

import { run } from "@ambient/ctl";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  docs,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  service,
  startControlPlane,
} from "../utils/index.js";

let env: RunningControlPlane;

beforeAll(async () => {
  env = await startControlPlane(
    {
      "mesh.yaml": docs(
        namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
        node("node-1", "127.10.1.1"),
        pod({
          name: "web",
          namespace: "demo",
          node: "node-1",
          ip: "127.10.1.10",
          sa: "web",
          labels: { app: "web" },
        }),
        service({
          name: "web",
          namespace: "demo",
          vip: "127.10.100.1",
          selector: { app: "web" },
          ports: [{ port: 80, targetPort: 8080 }],
        }),
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-legacy, namespace: demo }
spec:
  action: DENY
  rules: [{ from: [{ source: { namespaces: ["legacy"] } }] }]
`,
      ),
    },
    { watch: false },
  );
});
afterAll(async () => env?.stop());

async function ctl(...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await run(argv, {}, (s) => lines.push(s));
  return { code, out: lines.join("\n") };
}

describe("ambientctl xds", () => {
  it("prints workloads, services and policies as tables", async () => {
    const { code, out } = await ctl("xds", "--xds-address", env.cp.address);
    expect(code).toBe(0);
    expect(out).toMatch(/^NAMESPACE\s+NAME\s+ADDRESS/m);
    expect(out).toMatch(/demo\s+web\s+127\.10\.1\.10\s+node-1\s+web\s+HBONE\s+HEALTHY/);
    expect(out).toMatch(/demo\s+web\s+web\.demo\.svc\.cluster\.local\s+127\.10\.100\.1\s+80->8080\s+1/);
    expect(out).toMatch(/demo\s+deny-legacy\s+NAMESPACE\s+DENY\s+1\s+ns=legacy/);
  });

  it("prints JSON with addresses as text", async () => {
    const { code, out } = await ctl("xds", "workloads", "-o", "json", "--xds-address", env.cp.address);
    expect(code).toBe(0);
    const workloads = JSON.parse(out) as { uid: string; addresses: string[] }[];
    expect(workloads.map((w) => [w.uid, w.addresses])).toEqual([
      ["Kubernetes//Pod/demo/web", ["127.10.1.10"]],
    ]);
  });

  it("fails with one clear line when nothing answers", async () => {
    const { code } = await ctl("xds", "--xds-address", "127.0.0.1:1", "--timeout", "300ms");
    expect(code).toBe(2);
  });
});
