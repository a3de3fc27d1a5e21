// ambientctl up --demo on the shipped examples/ folder: the whole local mesh (control plane, two
// ztunnels, echo servers on 127.10.x.y) starts, and every demo step behaves as the README says.

import { fileURLToPath } from "node:url";
import { run } from "@ambient/ctl";
import { afterAll, describe, expect, it, vi } from "vitest";
import { type TempDir, tempDir } from "../utils/index.js";

const examples = fileURLToPath(new URL("../../examples", import.meta.url));
let state: TempDir | undefined;
afterAll(async () => state?.cleanup());

describe("ambientctl up --demo", () => {
  it("runs the examples mesh and the demo: cross-node request, policy denial, STRICT refusal, metrics, L7 via a waypoint", async () => {
    state = await tempDir("ambient-up-");
    const lines: string[] = [];
    const code = await run(
      [
        "up",
        "-f",
        examples,
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        state.path,
        "--demo",
        "--exit-after-start",
        "--log-level",
        "silent",
      ],
      {},
      (s) => lines.push(s),
    );
    const out = lines.join("\n");
    expect(out).toMatch(/demo\s+httpbin-v1\s+node-2\s+127\.10\.2\.20\s+8080\s+httpbin\s+ambient \(HBONE\)/);
    expect(out).toMatch(/legacy\s+legacy-client\s+node-2\s+127\.10\.2\.30\s+-\s+default\s+none/);
    // The pods that run proxies say so, and where the ingress gateway listens is printed.
    expect(out).toMatch(
      /istio-system\s+istio-ingressgateway\s+node-1\s+127\.10\.1\.50\s+8080,8443\s+istio-ingressgateway\s+ingress gateway/,
    );
    expect(out).toMatch(/shop\s+waypoint-waypoint\s+.*\s+waypoint\n/);
    expect(out).toContain("ingress gateway istio-system/istio-ingressgateway: 127.10.1.50, ports 8080, 8443");
    expect(out).toMatch(/✔ demo\/sleep on node-1 → httpbin: HTTP 200 from httpbin-v1 on node-2/);
    expect(out).toContain('source_principal="spiffe://cluster.local/ns/demo/sa/sleep"');
    expect(out).toContain('destination_principal="spiffe://cluster.local/ns/demo/sa/httpbin"');
    expect(out).toMatch(/✔ demo\/notsleep → httpbin: denied/);
    expect(out).toMatch(/✔ legacy\/legacy-client .* refused under STRICT/);
    // L7 in shop, through its waypoint: the HTTPRoute's split and header rule, the L7 deny.
    expect(out).toMatch(/✔ shop\/shopper → reviews, 40 requests through the waypoint: split by HTTPRoute/);
    expect(out).toMatch(/reviews-v1: \d+/);
    expect(out).toMatch(/✔ with x-tester: true the HTTPRoute's first rule sends every request to reviews-v2/);
    expect(out).toMatch(
      /✔ DELETE \/reviews\/1: denied at the waypoint[^\n]*\n[^\n]*\n\s+HTTP 403 RBAC: access denied/,
    );
    // From outside the mesh through the ingress gateway: HTTPS with the Secret's certificate, and
    // plain HTTP redirected.
    expect(out).toMatch(/✔ request entering through the ingress gateway: HTTPS to httpbin\.example\.com/);
    expect(out).toMatch(/HTTP 200 from httpbin-v\d; certificate DNS:httpbin\.example\.com/);
    expect(out).toMatch(
      /✔ plain HTTP to the gateway is redirected to HTTPS[^\n]*\n[^\n]*\n\s+HTTP 301 location: https:\/\/httpbin\.example\.com\/headers/,
    );
    expect(out).toContain("10/10 demo steps behaved as expected.");
    expect(code).toBe(0);
  });

  it("refuses --netns with --demo, naming what to do instead", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await expect(run(["up", "--netns", "--demo", "-f", examples], {}, () => {})).resolves.toBe(2);
      expect(String(stderr.mock.calls[0]?.[0])).toMatch(/--demo runs on the loopback mesh; with --netns/);
    } finally {
      stderr.mockRestore();
    }
  });
});
