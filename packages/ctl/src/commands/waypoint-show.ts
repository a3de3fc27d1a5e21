// `ambientctl waypoint list` (istioctl's columns NAME REVISION TRAFFIC TYPE PROGRAMMED, NAMESPACE
// first with -A) and `waypoint status` (NAME STATUS TYPE REASON MESSAGE: each waypoint's Programmed
// condition, so a waypoint that is not ready says why).

import type { Gateway } from "@ambient/kube";
import { renderTable } from "../table.js";
import { listWaypoints, programmedOf, trafficTypeOf, waitProgrammed } from "../waypoints.js";
import type { WaypointContext } from "./waypoint.js";

export async function waypointList(ctx: WaypointContext): Promise<number> {
  const all = ctx.values["all-namespaces"] === true;
  const waypoints = await listWaypoints(ctx.kc, all ? undefined : ctx.namespace);
  if (waypoints.length === 0) {
    ctx.out("No waypoints found.");
    return 0;
  }
  const headers = ["NAME", "REVISION", "TRAFFIC TYPE", "PROGRAMMED"];
  const rows = waypoints.map((gw) => [
    gw.metadata.name,
    gw.metadata.labels?.["istio.io/rev"] || "default",
    trafficTypeOf(gw),
    programmedOf(gw)?.status ?? "False",
  ]);
  ctx.out(
    all
      ? renderTable(
          ["NAMESPACE", ...headers],
          rows.map((r, i) => [waypoints[i]!.metadata.namespace ?? "", ...r]),
        )
      : renderTable(headers, rows),
  );
  return 0;
}

export async function waypointStatus(ctx: WaypointContext): Promise<number> {
  let waypoints = await listWaypoints(ctx.kc, ctx.namespace);
  if (waypoints.length === 0) {
    ctx.out("No waypoints found.");
    return 0;
  }
  if (ctx.values["wait"] === true) {
    const timeout = ctx.values["waypoint-timeout"] as number;
    waypoints = await Promise.all(
      waypoints.map((gw) => waitProgrammed(ctx.kc, ctx.namespace, gw.metadata.name, timeout)),
    );
  }
  ctx.out(renderTable(["NAME", "STATUS", "TYPE", "REASON", "MESSAGE"], waypoints.map(statusRow)));
  return 0;
}

function statusRow(gw: Gateway): string[] {
  const c = programmedOf(gw);
  if (!c)
    return [
      gw.metadata.name,
      "Unknown",
      "Programmed",
      "Pending",
      "no status yet: is the control plane (its waypoint controller) running?",
    ];
  return [gw.metadata.name, c.status, c.type, c.reason ?? "", c.message ?? ""];
}
