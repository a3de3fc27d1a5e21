// `ambientctl waypoint apply`: the waypoint Gateway istioctl writes (listener `mesh`, 15008, HBONE;
// `--for` as istio.io/waypoint-for), server-side applied as "ambientctl"; `--wait` until it is
// Programmed; `--enroll-namespace` labels the namespace istio.io/use-waypoint=<name>.

import { findCode } from "@ambient/core";
import { apiStatusOf, mergePatch, serverSideApply } from "@ambient/kube/api";
import {
  GATEWAYS,
  getNamespace,
  missingCrds,
  USE_WAYPOINT_LABEL,
  WAYPOINT_CLASS,
  WAYPOINT_FOR_LABEL,
  waitProgrammed,
} from "../waypoints.js";
import type { WaypointContext } from "./waypoint.js";

const TRAFFIC_TYPES = ["all", "none", "service", "workload"];
/** Our field manager on the Gateway (istioctl's is "istioctl"). */
const FIELD_MANAGER = "ambientctl";

export async function waypointApply(ctx: WaypointContext): Promise<number> {
  const { kc, namespace, name, values, out } = ctx;
  const trafficType = values["for"] as string | undefined;
  if (trafficType !== undefined && !TRAFFIC_TYPES.includes(trafficType))
    throw new Error(`invalid traffic type: ${trafficType}. Valid options are: [${TRAFFIC_TYPES.join(" ")}]`);
  const revision = values["revision"] as string | undefined;

  const ns = await getNamespace(kc, namespace);
  const enroll = values["enroll-namespace"] === true;
  if (enroll) {
    const current = ns.metadata.labels?.[USE_WAYPOINT_LABEL];
    // istioctl only warns and stops here with exit 0; a script would not notice, so this refuses.
    if (current && current !== name && values["overwrite"] !== true)
      throw new Error(
        `namespace ${namespace} already has an enrolled waypoint (${USE_WAYPOINT_LABEL}=${current}); add --overwrite to replace it with ${name}`,
      );
    if (ns.metadata.labels?.["istio.io/dataplane-mode"] !== "ambient")
      out(
        `⚠️ Warning: namespace is not enrolled in ambient. Consider running \`kubectl label namespace ${namespace} istio.io/dataplane-mode=ambient\``,
      );
  }

  const labels: Record<string, string> = {};
  if (trafficType) labels[WAYPOINT_FOR_LABEL] = trafficType;
  if (revision) labels["istio.io/rev"] = revision;
  const gateway = {
    apiVersion: `${GATEWAYS.group}/${GATEWAYS.version}`,
    kind: "Gateway",
    metadata: { name, namespace, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
    spec: {
      gatewayClassName: WAYPOINT_CLASS,
      listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
    },
  };
  try {
    await serverSideApply(kc, GATEWAYS, gateway, { fieldManager: FIELD_MANAGER });
  } catch (err) {
    if (apiStatusOf(err) === 404) throw missingCrds(err);
    if (findCode(err) === "AMB_KUBE_APPLY_CONFLICT")
      throw new Error(
        `Gateway ${namespace}/${name} exists and was written by another tool: ${(err as Error).message}; delete it or pick another --name`,
        { cause: err },
      );
    throw err;
  }
  out(`✅ waypoint ${namespace}/${name} applied`);

  if (values["wait"] === true) {
    await waitProgrammed(kc, namespace, name, values["waypoint-timeout"] as number);
    out(`✅ waypoint ${namespace}/${name} is ready!`);
  }
  if (enroll) {
    await mergePatch(kc, `/api/v1/namespaces/${encodeURIComponent(namespace)}`, {
      metadata: { labels: { [USE_WAYPOINT_LABEL]: name } },
    });
    out(`✅ namespace ${namespace} labeled with "${USE_WAYPOINT_LABEL}: ${name}"`);
  }
  return 0;
}
