// Istio's semantic rules for DestinationRule: a host, uniquely named subsets, and traffic
// policies (top level, per port, per subset) whose load balancer, outlier detection and
// connection pool settings make sense.

import {
  at,
  atPath,
  dns1123Label,
  forEachRecord,
  isRecord,
  type Json,
  type Problems,
  parseGoDuration,
  present,
  quote,
  record,
} from "@ambient/kube";
import { duration } from "./virtual-service.js";

const SIMPLE_LOAD_BALANCERS = [
  "UNSPECIFIED",
  "LEAST_CONN",
  "RANDOM",
  "PASSTHROUGH",
  "ROUND_ROBIN",
  "LEAST_REQUEST",
] as const;

export function checkDestinationRule(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  if (!present(spec.host)) problems.add("spec.host", "is required (the service this rule applies to)");

  checkTrafficPolicy(spec.trafficPolicy, "spec.trafficPolicy", problems);

  const seen = new Map<string, string>();
  forEachRecord(spec.subsets, "spec.subsets", (subset, path) => {
    const name = subset.name;
    if (typeof name !== "string" || name === "") {
      problems.add(at(path, "name"), "is required");
    } else {
      // Subset names end up in cluster names (outbound|80|v1|host), so Istio holds them to DNS labels.
      const problem = dns1123Label(name);
      if (problem) problems.add(at(path, "name"), `${quote(name)} ${problem}`);
      const first = seen.get(name);
      if (first) problems.add(at(path, "name"), `duplicates the subset name at ${first}`);
      else seen.set(name, path);
    }
    for (const [key, value] of Object.entries(record(subset.labels))) {
      if (key.includes("*") || (typeof value === "string" && value.includes("*"))) {
        problems.add(at(at(path, "labels"), key), "wildcards are not supported in subset labels");
      }
    }
    checkTrafficPolicy(subset.trafficPolicy, at(path, "trafficPolicy"), problems);
  });
}

function checkTrafficPolicy(value: unknown, path: string, problems: Problems, portLevel = false): void {
  if (!isRecord(value)) return;
  const lb = record(value.loadBalancer);
  if (lb.simple !== undefined) {
    if (typeof lb.simple !== "string" || !(SIMPLE_LOAD_BALANCERS as readonly string[]).includes(lb.simple)) {
      problems.add(atPath(path, "loadBalancer.simple"), `must be one of ${SIMPLE_LOAD_BALANCERS.join(", ")}`);
    }
    if (lb.consistentHash !== undefined) {
      problems.add(
        atPath(path, "loadBalancer.consistentHash"),
        "cannot be combined with loadBalancer.simple",
      );
    }
  }

  const od = record(value.outlierDetection);
  for (const field of ["maxEjectionPercent", "minHealthPercent"]) {
    const v = od[field];
    if (typeof v === "number" && (v < 0 || v > 100 || !Number.isInteger(v))) {
      problems.add(atPath(path, `outlierDetection.${field}`), "must be a whole percentage from 0 to 100");
    }
  }
  for (const field of [
    "consecutive5xxErrors",
    "consecutiveGatewayErrors",
    "consecutiveLocalOriginFailures",
  ]) {
    const v = od[field];
    if (typeof v === "number" && v < 0)
      problems.add(atPath(path, `outlierDetection.${field}`), "must not be negative");
  }
  duration(od.interval, atPath(path, "outlierDetection.interval"), problems);
  duration(od.baseEjectionTime, atPath(path, "outlierDetection.baseEjectionTime"), problems);

  const pool = record(value.connectionPool);
  checkTcpPool(record(pool.tcp), atPath(path, "connectionPool.tcp"), problems);
  duration(record(pool.http).idleTimeout, atPath(path, "connectionPool.http.idleTimeout"), problems);

  // Port-level settings cannot nest further port-level settings (Istio's PortTrafficPolicy).
  if (portLevel) return;
  const seenPorts = new Map<number, string>();
  forEachRecord(value.portLevelSettings, at(path, "portLevelSettings"), (setting, settingPath) => {
    const number = record(setting.port).number;
    if (typeof number !== "number") {
      problems.add(atPath(settingPath, "port.number"), "is required");
    } else {
      const first = seenPorts.get(number);
      if (first) problems.add(atPath(settingPath, "port.number"), `duplicates the port of ${first}`);
      else seenPorts.set(number, settingPath);
    }
    checkTrafficPolicy(setting, settingPath, problems, true);
  });
}

// Linux's limits for TCP_KEEPIDLE / TCP_KEEPINTVL (seconds) and TCP_KEEPCNT: setsockopt refuses more.
const MAX_KEEPALIVE_SECONDS = 32_767;
const MAX_KEEPALIVE_PROBES = 127;

/**
 * connectionPool.tcp: every field the waypoint enforces (connectTimeout, idleTimeout,
 * maxConnectionDuration, maxConnections, tcpKeepalive), held to values it can apply as written.
 */
function checkTcpPool(tcp: Record<string, unknown>, path: string, problems: Problems): void {
  const max = tcp.maxConnections;
  if (max !== undefined && (typeof max !== "number" || !Number.isInteger(max) || max < 0))
    problems.add(at(path, "maxConnections"), "must be a whole number, 0 or more (0: no limit)");
  // Istio: a connect timeout and a maximum duration of less than 1 ms mean nothing.
  for (const field of ["connectTimeout", "maxConnectionDuration"]) {
    const ms = durationMs(tcp[field], at(path, field), problems);
    if (ms !== undefined && ms < 1) problems.add(at(path, field), "must be at least 1ms");
  }
  durationMs(tcp.idleTimeout, at(path, "idleTimeout"), problems);
  const keepalive = record(tcp.tcpKeepalive);
  const kPath = at(path, "tcpKeepalive");
  for (const field of ["time", "interval"]) {
    const ms = durationMs(keepalive[field], at(kPath, field), problems);
    if (ms === undefined) continue;
    // The kernel counts keepalive in whole seconds; Istio truncates a fraction, 0 meaning the OS default.
    if (ms < 1000 || ms % 1000 !== 0 || ms / 1000 > MAX_KEEPALIVE_SECONDS)
      problems.add(
        at(kPath, field),
        `must be a whole number of seconds from 1s to ${MAX_KEEPALIVE_SECONDS}s (the kernel's unit and limit)`,
      );
  }
  const probes = keepalive.probes;
  if (
    probes !== undefined &&
    (typeof probes !== "number" || !Number.isInteger(probes) || probes < 1 || probes > MAX_KEEPALIVE_PROBES)
  )
    problems.add(
      at(kPath, "probes"),
      `must be a whole number from 1 to ${MAX_KEEPALIVE_PROBES} (Linux's limit)`,
    );
}

/** The duration in ms, or undefined when absent or invalid (then a problem is recorded). */
function durationMs(value: unknown, path: string, problems: Problems): number | undefined {
  if (value === undefined || value === null) return undefined;
  const before = problems.size;
  duration(value, path, problems);
  if (problems.size !== before) return undefined;
  const ns = parseGoDuration(value as string);
  return ns === undefined ? undefined : ns / 1e6;
}
