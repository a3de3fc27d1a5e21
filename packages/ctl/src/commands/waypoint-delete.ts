// `ambientctl waypoint delete NAME... | --all`: deletes waypoint Gateways (the garbage collector
// removes their Deployment, Service and ServiceAccount), with istioctl's messages; a namespace
// still enrolled with a deleted waypoint is pointed out, since its traffic now fails closed.

import type { Gateway } from "@ambient/kube";
import { apiStatusOf, requestJson } from "@ambient/kube/api";
import { GATEWAYS, getNamespace, listWaypoints, USE_WAYPOINT_LABEL } from "../waypoints.js";
import type { WaypointContext } from "./waypoint.js";

export async function waypointDelete(ctx: WaypointContext): Promise<number> {
  const { kc, namespace, positionals, out } = ctx;
  const all = ctx.values["all"] === true;
  if (all && positionals.length > 0)
    throw new Error("cannot specify waypoint names when deleting all waypoints");
  if (!all && positionals.length === 0)
    throw new Error("must specify a waypoint name or delete all using --all");

  const waypoints = new Map<string, Gateway>(
    (await listWaypoints(kc, namespace)).map((g) => [g.metadata.name, g]),
  );
  const names = all ? [...waypoints.keys()] : positionals;
  if (all && names.length === 0) out("No waypoints found.");
  const deleted: string[] = [];
  const failures: string[] = [];
  for (const name of names) {
    if (!waypoints.has(name)) {
      out(`waypoint ${namespace}/${name} not found`);
      continue;
    }
    try {
      await requestJson(
        kc,
        "DELETE",
        `/apis/${GATEWAYS.group}/${GATEWAYS.version}/namespaces/${namespace}/gateways/${encodeURIComponent(name)}`,
        { propagationPolicy: "Background" },
      );
      out(`waypoint ${namespace}/${name} deleted`);
      deleted.push(name);
    } catch (err) {
      if (apiStatusOf(err) === 404) out(`waypoint ${namespace}/${name} not found`);
      else failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  const enrolled = (await getNamespace(kc, namespace)).metadata.labels?.[USE_WAYPOINT_LABEL];
  if (enrolled && deleted.includes(enrolled))
    out(
      `⚠️ Warning: namespace ${namespace} still has ${USE_WAYPOINT_LABEL}=${enrolled}: its traffic fails closed until you run \`kubectl label namespace ${namespace} ${USE_WAYPOINT_LABEL}-\``,
    );
  if (failures.length > 0) throw new Error(`could not delete ${failures.join("; ")}`);
  return 0;
}
