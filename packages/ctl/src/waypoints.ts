// The cluster reads and writes behind `ambientctl waypoint`: waypoint Gateways (class
// istio-waypoint) and their namespaces, with errors that say what is missing, and the wait for
// Programmed that `--wait` does.

import type { Gateway, KubeObject } from "@ambient/kube";
import { apiStatusOf, getJson, type KubeConfig, type ResourceRef } from "@ambient/kube/api";

export const WAYPOINT_CLASS = "istio-waypoint";
export const USE_WAYPOINT_LABEL = "istio.io/use-waypoint";
export const WAYPOINT_FOR_LABEL = "istio.io/waypoint-for";
export const GATEWAYS: ResourceRef = {
  group: "gateway.networking.k8s.io",
  version: "v1",
  plural: "gateways",
  kind: "Gateway",
  namespaced: true,
};
// istioctl polls once a second while it waits.
const POLL_MS = 1_000;

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export async function getNamespace(kc: KubeConfig, namespace: string): Promise<KubeObject> {
  try {
    return await getJson<KubeObject>(kc, `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
  } catch (err) {
    if (apiStatusOf(err) === 404) throw new Error(`namespace: ${namespace} not found`);
    throw err;
  }
}

/** Waypoints in `namespace` (every namespace when undefined), by namespace then name. */
export async function listWaypoints(kc: KubeConfig, namespace: string | undefined): Promise<Gateway[]> {
  const base = `/apis/${GATEWAYS.group}/${GATEWAYS.version}`;
  const path = namespace
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/gateways`
    : `${base}/gateways`;
  let list: { items?: Gateway[] };
  try {
    list = await getJson<{ items?: Gateway[] }>(kc, path);
  } catch (err) {
    if (apiStatusOf(err) === 404) throw missingCrds(err);
    throw err;
  }
  return (list.items ?? [])
    .filter((g) => g.spec?.gatewayClassName === WAYPOINT_CLASS)
    .sort((a, b) => key(a).localeCompare(key(b)));
}

export async function getWaypoint(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<Gateway | undefined> {
  try {
    return await getJson<Gateway>(
      kc,
      `/apis/${GATEWAYS.group}/${GATEWAYS.version}/namespaces/${namespace}/gateways/${name}`,
    );
  } catch (err) {
    if (apiStatusOf(err) === 404) return undefined;
    throw err;
  }
}

export function missingCrds(cause: unknown): Error {
  return new Error(
    "missing Kubernetes Gateway CRDs need to be installed before applying a waypoint (gateways.gateway.networking.k8s.io is not served)",
    { cause },
  );
}

export function programmedOf(gw: Gateway | undefined): Condition | undefined {
  const conditions = ((gw?.status as { conditions?: Condition[] } | undefined)?.conditions ??
    []) as Condition[];
  return conditions.find((c) => c.type === "Programmed");
}

/** The waypoint's traffic type: its label, else istiod's default (service). */
export function trafficTypeOf(gw: Gateway): string {
  return gw.metadata.labels?.[WAYPOINT_FOR_LABEL] || "service";
}

/**
 * Polls until the waypoint's Programmed condition is True; past `timeoutMs` fails naming the
 * last reason seen, so the user knows what the controller is waiting for.
 */
export async function waitProgrammed(
  kc: KubeConfig,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<Gateway> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const gw = await getWaypoint(kc, namespace, name);
    const programmed = programmedOf(gw);
    if (programmed?.status === "True") return gw!;
    if (Date.now() >= deadline) {
      const why = !gw
        ? "the Gateway does not exist"
        : programmed
          ? `Programmed=${programmed.status} (${programmed.reason}): ${programmed.message}`
          : "it has no status yet: is the control plane (its waypoint controller) running?";
      throw new Error(
        `timed out after ${timeoutMs / 1000}s while waiting for waypoint ${namespace}/${name}: ${why}`,
      );
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))),
    );
  }
}

function key(g: Gateway): string {
  return `${g.metadata.namespace}/${g.metadata.name}`;
}
