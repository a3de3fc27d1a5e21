import { describe, expect, it } from "vitest";
import { validateObject } from "./index.js";

function problemsOf(kind: string, spec: unknown, apiVersion = "networking.istio.io/v1") {
  const result = validateObject({ apiVersion, kind, metadata: { name: "r", namespace: "demo" }, spec });
  return result.ok ? [] : result.problems;
}

const vs = (http: unknown[], extra: Record<string, unknown> = {}) =>
  problemsOf("VirtualService", { hosts: ["web"], http, ...extra });
const dest = (host: string, weight?: number) => ({
  destination: { host },
  ...(weight === undefined ? {} : { weight }),
});

describe("VirtualService validation", () => {
  it("accepts routes, redirects and direct responses", () => {
    expect(vs([{ route: [dest("web")] }])).toEqual([]);
    expect(vs([{ redirect: { uri: "/new" } }])).toEqual([]);
    expect(vs([{ directResponse: { status: 503 } }])).toEqual([]);
    expect(
      vs([
        {
          match: [{ uri: { regex: "/api/v[0-9]+/.*" }, headers: { "x-user": { regex: "^a.*" } } }],
          route: [dest("a", 90), dest("b", 10)],
          timeout: "1.5s",
          retries: { attempts: 3, perTryTimeout: "250ms" },
          fault: { delay: { fixedDelay: "1m30s", percentage: { value: 50 } } },
        },
      ]),
    ).toEqual([]);
    expect(
      problemsOf(
        "VirtualService",
        { hosts: ["web"], tcp: [{ route: [dest("web")] }] },
        "networking.istio.io/v1alpha3",
      ),
    ).toEqual([]);
  });

  it("needs at least one host", () => {
    expect(problemsOf("VirtualService", { http: [{ route: [dest("web")] }] })).toEqual([
      { path: "spec.hosts", message: "must list at least one host" },
    ]);
  });

  it("each http route needs route, redirect or directResponse, and not route with redirect", () => {
    expect(vs([{ route: [dest("a")] }, { timeout: "1s" }])).toEqual([
      { path: "spec.http[1]", message: "must set one of route, redirect or directResponse" },
    ]);
    expect(vs([{ route: [dest("a")], redirect: { uri: "/x" } }])).toEqual([
      { path: "spec.http[0].redirect", message: "cannot be combined with route" },
    ]);
  });

  it("weights are not negative and not all zero across several destinations", () => {
    expect(vs([{ route: [dest("a", -10), dest("b", 110)] }])).toEqual([
      { path: "spec.http[0].route[0].weight", message: "must not be negative" },
    ]);
    expect(vs([{ route: [dest("a", 0), dest("b", 0)] }]).map((p) => p.path)).toEqual(["spec.http[0].route"]);
    expect(vs([{ route: [dest("a", 0)] }])).toEqual([]);
  });

  it("regular expressions compile", () => {
    const problems = vs([
      {
        match: [{ uri: { regex: "(unclosed" } }, { queryParams: { q: { regex: "[a-" } } }],
        route: [dest("a")],
      },
    ]);
    expect(problems.map((p) => p.path)).toEqual([
      "spec.http[0].match[0].uri.regex",
      "spec.http[0].match[1].queryParams.q.regex",
    ]);
  });

  it("durations parse as Go durations", () => {
    const problems = vs([
      {
        route: [dest("a")],
        timeout: "5 seconds",
        retries: { perTryTimeout: "1.5" },
        fault: { delay: { fixedDelay: "s" } },
      },
    ]);
    expect(problems.map((p) => p.path)).toEqual([
      "spec.http[0].timeout",
      "spec.http[0].retries.perTryTimeout",
      "spec.http[0].fault.delay.fixedDelay",
    ]);
  });

  it("folds the schema's oneOf noise into one message", () => {
    const problems = vs([{ match: [{ uri: { exact: "/a", prefix: "/" } }], route: [dest("a")] }]);
    expect(problems).toEqual([
      { path: "spec.http[0].match[0].uri", message: expect.stringContaining("mutually exclusive") },
    ]);
  });
});

describe("DestinationRule validation", () => {
  it("accepts subsets and traffic policies", () => {
    const spec = {
      host: "web.demo.svc.cluster.local",
      trafficPolicy: {
        loadBalancer: { simple: "ROUND_ROBIN" },
        outlierDetection: { maxEjectionPercent: 50, interval: "10s" },
      },
      subsets: [
        { name: "v1", labels: { version: "v1" } },
        { name: "v2", labels: { version: "v2" } },
      ],
    };
    expect(problemsOf("DestinationRule", spec)).toEqual([]);
  });

  it("host is required", () => {
    expect(problemsOf("DestinationRule", { subsets: [] }).map((p) => p.path)).toEqual(["spec.host"]);
  });

  it("subset names are non-empty and unique", () => {
    const problems = problemsOf("DestinationRule", {
      host: "web",
      subsets: [{ name: "v1" }, { name: "v1" }, { name: "" }],
    });
    expect(problems.map((p) => p.path)).toEqual(["spec.subsets[1].name", "spec.subsets[2].name"]);
  });

  it("loadBalancer.simple must be a known policy, wherever it appears", () => {
    const problems = problemsOf("DestinationRule", {
      host: "web",
      subsets: [{ name: "v1", trafficPolicy: { loadBalancer: { simple: "FASTEST" } } }],
    });
    expect(problems).toEqual([
      {
        path: "spec.subsets[0].trafficPolicy.loadBalancer.simple",
        message: expect.stringContaining("ROUND_ROBIN"),
      },
    ]);
  });

  it("outlier detection percentages are 0-100 and durations parse", () => {
    const problems = problemsOf("DestinationRule", {
      host: "web",
      trafficPolicy: {
        outlierDetection: { maxEjectionPercent: 150, minHealthPercent: -1, baseEjectionTime: "30" },
        portLevelSettings: [{ port: { number: 80 }, outlierDetection: { maxEjectionPercent: 101 } }],
      },
    });
    expect(problems.map((p) => p.path)).toEqual([
      "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
      "spec.trafficPolicy.outlierDetection.minHealthPercent",
      "spec.trafficPolicy.outlierDetection.baseEjectionTime",
      "spec.trafficPolicy.portLevelSettings[0].outlierDetection.maxEjectionPercent",
    ]);
  });
});

describe("DestinationRule connectionPool.tcp", () => {
  const tcp = (settings: Record<string, unknown>) =>
    problemsOf("DestinationRule", { host: "web", trafficPolicy: { connectionPool: { tcp: settings } } });

  it("accepts what the waypoint enforces", () => {
    expect(
      tcp({
        maxConnections: 100,
        connectTimeout: "250ms",
        idleTimeout: "0s",
        maxConnectionDuration: "1h",
        tcpKeepalive: { time: "7200s", interval: "75s", probes: 9 },
      }),
    ).toEqual([]);
  });

  it("refuses values it could not apply as written, naming the field", () => {
    const problems = tcp({
      maxConnections: -1,
      connectTimeout: "0s",
      maxConnectionDuration: "500us",
      tcpKeepalive: { time: "500ms", interval: "1.5s", probes: 0 },
    });
    const at = "spec.trafficPolicy.connectionPool.tcp";
    expect(problems).toEqual([
      { path: `${at}.maxConnections`, message: expect.stringContaining("0 or more") },
      { path: `${at}.connectTimeout`, message: "must be at least 1ms" },
      { path: `${at}.maxConnectionDuration`, message: "must be at least 1ms" },
      { path: `${at}.tcpKeepalive.time`, message: expect.stringContaining("whole number of seconds") },
      { path: `${at}.tcpKeepalive.interval`, message: expect.stringContaining("whole number of seconds") },
      { path: `${at}.tcpKeepalive.probes`, message: expect.stringContaining("1 to 127") },
    ]);
    expect(tcp({ tcpKeepalive: { probes: 128, time: "40000s" } }).map((p) => p.path)).toEqual([
      `${at}.tcpKeepalive.time`,
      `${at}.tcpKeepalive.probes`,
    ]);
  });
});

describe("Gateway validation", () => {
  const gateway = (spec: unknown, apiVersion = "gateway.networking.k8s.io/v1") =>
    problemsOf("Gateway", spec, apiVersion);

  it("accepts a waypoint with its HBONE listener", () => {
    const spec = {
      gatewayClassName: "istio-waypoint",
      listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
    };
    expect(gateway(spec)).toEqual([]);
    expect(gateway(spec, "gateway.networking.k8s.io/v1beta1")).toEqual([]);
  });

  it("gatewayClassName is required", () => {
    expect(gateway({ listeners: [{ name: "http", port: 80, protocol: "HTTP" }] }).map((p) => p.path)).toEqual(
      ["spec.gatewayClassName"],
    );
  });

  it("a waypoint needs an HBONE listener on 15008", () => {
    const problems = gateway({
      gatewayClassName: "istio-waypoint",
      listeners: [{ name: "mesh", port: 15009, protocol: "HBONE" }],
    });
    expect(problems).toEqual([
      { path: "spec.listeners", message: expect.stringContaining("HBONE on port 15008") },
    ]);
  });
});
