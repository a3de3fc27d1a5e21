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
  const tcp = record(pool.tcp);
  duration(tcp.connectTimeout, atPath(path, "connectionPool.tcp.connectTimeout"), problems);
  duration(tcp.maxConnectionDuration, atPath(path, "connectionPool.tcp.maxConnectionDuration"), problems);
  duration(tcp.idleTimeout, atPath(path, "connectionPool.tcp.idleTimeout"), problems);
  duration(record(tcp.tcpKeepalive).time, atPath(path, "connectionPool.tcp.tcpKeepalive.time"), problems);
  duration(
    record(tcp.tcpKeepalive).interval,
    atPath(path, "connectionPool.tcp.tcpKeepalive.interval"),
    problems,
  );
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
