// Gateway API Gateway rules beyond its CRD schema: a class name, unique listener names, and for
// waypoints (class istio-waypoint) the HBONE listener on 15008 that ztunnels tunnel into.

import { at, forEachRecord, type Json, type Problems, present, record } from "@ambient/kube";

const WAYPOINT_CLASS = "istio-waypoint";
// Istio's waypoint listens for HBONE on the same port as ztunnel's inbound (DESIGN.md §3).
const HBONE_PORT = 15008;

export function checkGateway(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  if (!present(spec.gatewayClassName)) {
    problems.add("spec.gatewayClassName", "is required (use istio-waypoint for a waypoint)");
  }

  const names = new Map<string, string>();
  forEachRecord(spec.listeners, "spec.listeners", (listener, path) => {
    if (typeof listener.name !== "string") return;
    const first = names.get(listener.name);
    if (first) problems.add(at(path, "name"), `duplicates the listener name at ${first}`);
    else names.set(listener.name, path);
  });

  if (spec.gatewayClassName === WAYPOINT_CLASS) {
    const listeners = Array.isArray(spec.listeners) ? spec.listeners : [];
    const hasHbone = listeners.some((l) => record(l).protocol === "HBONE" && record(l).port === HBONE_PORT);
    if (!hasHbone) {
      problems.add(
        "spec.listeners",
        `an ${WAYPOINT_CLASS} Gateway needs a listener with protocol HBONE on port ${HBONE_PORT} (for example { name: mesh, port: ${HBONE_PORT}, protocol: HBONE })`,
      );
    }
  }
}
