// The guided demo `ambientctl up --demo` runs on examples/: a request between two ambient pods on
// different nodes with both identities shown, a request L4 policy denies, a plaintext peer refused
// under STRICT mTLS, an excerpt of Istio's metrics, then L7 through the shop namespace's waypoint:
// an HTTPRoute canary split, its header rule, and a method an L7 AuthorizationPolicy denies; then a
// request from outside the mesh through the ingress gateway over HTTPS, and its HTTP redirect. Each
// step prints the command a person would type and what came back.

import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { join, relative } from "node:path";
import type { TLSSocket } from "node:tls";
import { httpGetViaSocks, httpViaSocks, type LocalMesh, SocksError } from "@ambient/testbed";

const SOCKS_REPLIES: Record<number, string> = {
  1: "general failure",
  2: "connection not allowed by ruleset",
  3: "network unreachable",
  4: "host unreachable",
  5: "connection refused",
  6: "TTL expired",
};

export interface DemoStep {
  title: string;
  command: string;
  ok: boolean;
  output: string;
}

/** `dir`: the manifests folder, where examples/ keeps the ingress step's certificate (certs/). */
export async function runDemo(mesh: LocalMesh, out: (s: string) => void, dir?: string): Promise<DemoStep[]> {
  const { pods, nodes } = mesh.summary();
  const find = (ns: string, name: string) => pods.find((p) => p.namespace === ns && p.name === name);
  const sleep = find("demo", "sleep");
  const notsleep = find("demo", "notsleep");
  const legacy = find("legacy", "legacy-client");
  const httpbinV1 = find("demo", "httpbin-v1");
  if (!sleep || !notsleep || !legacy || !httpbinV1) {
    throw new Error(
      "the demo needs examples/ (pods demo/sleep, demo/notsleep, demo/httpbin-v1, legacy/legacy-client)",
    );
  }
  const steps: DemoStep[] = [];
  const step = (s: DemoStep) => {
    steps.push(s);
    out(`\n${s.ok ? "✔" : "✘"} ${s.title}\n  $ ${s.command}\n${indent(s.output)}`);
  };
  const url = "http://httpbin.demo.svc.cluster.local/headers";

  // 1. sleep (node-1) → httpbin service, until a pod on another node answers (round robin).
  try {
    let res = await httpGetViaSocks(sleep.ip, "httpbin.demo.svc.cluster.local", 80, "/headers");
    let body = res.json<{ pod: string; node: string; serviceAccount: string }>();
    for (let i = 0; i < 3 && body.node === sleep.node; i++) {
      res = await httpGetViaSocks(sleep.ip, "httpbin.demo.svc.cluster.local", 80, "/headers");
      body = res.json();
    }
    step({
      title: `demo/sleep on ${sleep.node} → httpbin: HTTP ${res.status} from ${body.pod} on ${body.node}`,
      command: `curl -s --socks5-hostname ${sleep.ip}:15080 ${url}`,
      ok: res.status === 200,
      output: `pod=${body.pod} node=${body.node} serviceAccount=${body.serviceAccount}`,
    });
  } catch (err) {
    step({
      title: "demo/sleep → httpbin",
      command: `curl --socks5-hostname ${sleep.ip}:15080 ${url}`,
      ok: false,
      output: String(err),
    });
  }

  // Both identities, as the destination ztunnel recorded them.
  const metrics = await scrapeAll(nodes.map((n) => n.ip));
  const identityLine = metrics
    .split("\n")
    .find(
      (l) =>
        l.startsWith("istio_tcp_connections_opened_total{") &&
        l.includes('reporter="destination"') &&
        l.includes("sa/sleep"),
    );
  step({
    title: "both identities, verified by mutual TLS (destination ztunnel's metric)",
    command: `curl -s http://<node-ip>:15020/metrics | grep istio_tcp_connections_opened_total`,
    ok: Boolean(identityLine),
    output: identityLine
      ? pickLabels(identityLine, ["source_principal", "destination_principal", "connection_security_policy"])
      : "(no sample found)",
  });

  // 2. notsleep → httpbin: the AuthorizationPolicy only allows sa/sleep.
  try {
    await httpGetViaSocks(notsleep.ip, "httpbin.demo.svc.cluster.local", 80, "/headers");
    step({
      title: "demo/notsleep → httpbin was allowed (expected a denial)",
      command: `curl --socks5-hostname ${notsleep.ip}:15080 ${url}`,
      ok: false,
      output: "",
    });
  } catch (err) {
    const reply =
      err instanceof SocksError
        ? `SOCKS5 reply ${err.reply} (${SOCKS_REPLIES[err.reply] ?? "?"})`
        : String(err);
    step({
      title: "demo/notsleep → httpbin: denied by AuthorizationPolicy demo/httpbin-allow-sleep",
      command: `curl --socks5-hostname ${notsleep.ip}:15080 ${url}`,
      ok: err instanceof SocksError && err.reply === 2,
      output: `curl: (97) ${reply}`,
    });
  }

  // 3. legacy (no identity) → httpbin-v1's plaintext port under STRICT.
  const plaintext = await plaintextAttempt(legacy.ip, httpbinV1.ip);
  step({
    title: `legacy/legacy-client (plaintext, no identity) → httpbin-v1: refused under STRICT mTLS`,
    command: `curl --interface ${legacy.ip} http://${httpbinV1.ip}:15006/`,
    ok: plaintext.refused,
    output: plaintext.detail,
  });

  // 4. Metrics excerpt.
  const excerpt = metrics
    .split("\n")
    .filter(
      (l) =>
        /^istio_tcp_(connections_opened_total|received_bytes_total)\{/.test(l) &&
        l.includes('reporter="destination"'),
    )
    .slice(0, 4)
    .map((l) => shorten(l));
  step({
    title: "Istio metrics (excerpt)",
    command: "curl -s http://127.10.2.1:15020/metrics",
    ok: excerpt.length > 0,
    output: excerpt.join("\n"),
  });

  const shopper = find("shop", "shopper");
  if (shopper) await l7Steps(shopper.ip, step);
  const gateway = find("istio-system", "istio-ingressgateway");
  if (gateway && dir) await ingressSteps(gateway.ip, join(dir, "certs", "httpbin.example.com.pem"), step);
  return steps;
}

const INGRESS_HOST = "httpbin.example.com";

/** From outside the mesh through the ingress gateway (examples/60-ingress.yaml), as curl would. */
async function ingressSteps(gatewayIp: string, caFile: string, record: (s: DemoStep) => void): Promise<void> {
  const curl = `curl -s --resolve ${INGRESS_HOST}:8443:${gatewayIp} --cacert ${relative(process.cwd(), caFile)} https://${INGRESS_HOST}:8443/headers`;
  // 8. HTTPS terminated at the gateway with the Secret's certificate, then HBONE to httpbin.
  try {
    const ca = await readFile(caFile, "utf8");
    const res = await httpsGet(gatewayIp, 8443, INGRESS_HOST, "/headers", ca);
    const body = res.status === 200 ? (JSON.parse(res.body) as { pod?: string }) : {};
    record({
      title: `request entering through the ingress gateway: HTTPS to ${INGRESS_HOST}, TLS ended at istio-system/istio-ingressgateway, routed by VirtualService demo/httpbin-ingress`,
      command: curl,
      ok: res.status === 200 && typeof body.pod === "string" && body.pod.startsWith("httpbin-"),
      output: `HTTP ${res.status} from ${body.pod ?? "?"}; certificate ${res.subject}; httpbin admits the gateway's identity (AuthorizationPolicy demo/httpbin-allow-ingress names sa/istio-ingressgateway)`,
    });
  } catch (err) {
    record({
      title: "request entering through the ingress gateway",
      command: curl,
      ok: false,
      output: String(err),
    });
  }
  // 9. Plain HTTP on the gateway's port 8080 is redirected to HTTPS (tls.httpsRedirect).
  const plain = `curl -si -H 'host: ${INGRESS_HOST}' http://${gatewayIp}:8080/headers`;
  try {
    // node:http, not fetch: fetch does not let a caller set Host.
    const res = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        { host: gatewayIp, port: 8080, path: "/headers", headers: { host: INGRESS_HOST }, timeout: 10_000 },
        (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, location: r.headers.location });
        },
      );
      req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
      req.on("error", reject);
      req.end();
    });
    record({
      title: "plain HTTP to the gateway is redirected to HTTPS (Gateway httpbin-gateway, tls.httpsRedirect)",
      command: plain,
      ok: res.status === 301 && res.location === `https://${INGRESS_HOST}/headers`,
      output: `HTTP ${res.status} location: ${res.location}`,
    });
  } catch (err) {
    record({ title: "HTTP → HTTPS redirect at the gateway", command: plain, ok: false, output: String(err) });
  }
}

function httpsGet(
  ip: string,
  port: number,
  servername: string,
  path: string,
  ca: string,
): Promise<{ status: number; body: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: ip, port, servername, path, ca, headers: { host: servername }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            subject: cert.subjectaltname ?? "",
          }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end();
  });
}

const REVIEWS = "reviews.shop.svc.cluster.local";
/** Requests for the canary step: enough to see a 90/10 split without waiting. */
const CANARY_REQUESTS = 40;

/** L7 in the shop namespace (examples/50-shop.yaml): every request goes through its waypoint. */
async function l7Steps(from: string, record: (s: DemoStep) => void): Promise<void> {
  const curl = (extra = "") =>
    `curl -s ${extra}--socks5-hostname ${from}:15080 http://${REVIEWS}:9080/reviews/1`;
  const call = (method = "GET", headers: Record<string, string> = {}) =>
    httpViaSocks(from, { host: REVIEWS, port: 9080, method, path: "/reviews/1", headers });
  const podOf = (r: { status: number; json<T>(): T }) =>
    r.status === 200 ? r.json<{ pod: string }>().pod : `HTTP ${r.status}`;

  // 5. The HTTPRoute's weights, as the waypoint applies them.
  try {
    const counts = new Map<string, number>();
    for (let i = 0; i < CANARY_REQUESTS; i++) {
      const pod = podOf(await call());
      counts.set(pod, (counts.get(pod) ?? 0) + 1);
    }
    const seen = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    record({
      title: `shop/shopper → reviews, ${CANARY_REQUESTS} requests through the waypoint: split by HTTPRoute shop/reviews-canary (90/10)`,
      command: `for i in $(seq ${CANARY_REQUESTS}); do ${curl()}; done`,
      // Weighted at random, as Envoy does: any mix of the two versions is the route working.
      ok: seen.every(([pod]) => pod === "reviews-v1" || pod === "reviews-v2") && counts.has("reviews-v1"),
      output: seen.map(([pod, n]) => `${pod}: ${n}`).join("\n"),
    });
  } catch (err) {
    record({
      title: "shop/shopper → reviews through the waypoint",
      command: curl(),
      ok: false,
      output: String(err),
    });
  }

  // 6. The route's header rule: testers always get v2.
  try {
    const pods = new Set<string>();
    for (let i = 0; i < 5; i++) pods.add(podOf(await call("GET", { "x-tester": "true" })));
    record({
      title: "with x-tester: true the HTTPRoute's first rule sends every request to reviews-v2",
      command: curl(`-H 'x-tester: true' `),
      ok: pods.size === 1 && pods.has("reviews-v2"),
      output: [...pods].join(", "),
    });
  } catch (err) {
    record({
      title: "x-tester → reviews-v2",
      command: curl(`-H 'x-tester: true' `),
      ok: false,
      output: String(err),
    });
  }

  // 7. L7 policy: the waypoint refuses DELETE before any backend sees it.
  try {
    const res = await call("DELETE");
    record({
      title: "DELETE /reviews/1: denied at the waypoint by AuthorizationPolicy shop/reviews-read-only",
      command: curl("-X DELETE "),
      ok: res.status === 403,
      output: `HTTP ${res.status} ${res.body}`,
    });
  } catch (err) {
    record({
      title: "DELETE denied at the waypoint",
      command: curl("-X DELETE "),
      ok: false,
      output: String(err),
    });
  }
}

async function scrapeAll(ips: string[]): Promise<string> {
  const texts = await Promise.all(
    ips.map((ip) =>
      fetch(`http://${ip}:15020/metrics`).then(
        (r) => r.text(),
        () => "",
      ),
    ),
  );
  return texts.join("\n");
}

function plaintextAttempt(from: string, to: string): Promise<{ refused: boolean; detail: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: to, port: 15006, localAddress: from });
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("connect", () => s.write(`GET / HTTP/1.1\r\nHost: ${to}\r\nConnection: close\r\n\r\n`));
    s.once("error", (err) => resolve({ refused: true, detail: `curl: (56) Recv failure: ${err.message}` }));
    s.once("close", () => {
      const text = Buffer.concat(chunks).toString();
      if (text.startsWith("HTTP/1.1 200")) resolve({ refused: false, detail: text.split("\r\n")[0]! });
      else resolve({ refused: true, detail: "connection closed without a response" });
    });
  });
}

function pickLabels(line: string, names: string[]): string {
  return names.map((n) => new RegExp(`${n}="[^"]*"`).exec(line)?.[0] ?? `${n}=?`).join("\n");
}

function shorten(line: string): string {
  const keep = [
    "reporter",
    "source_workload",
    "destination_workload",
    "source_principal",
    "destination_principal",
    "connection_security_policy",
  ];
  const name = line.slice(0, line.indexOf("{"));
  const value = line.slice(line.lastIndexOf(" ") + 1);
  return `${name}{${keep
    .map((k) => new RegExp(`${k}="[^"]*"`).exec(line)?.[0])
    .filter(Boolean)
    .join(",")}} ${value}`;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}
