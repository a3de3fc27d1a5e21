// The tables of `ambientctl ztunnel-config`, with istioctl's columns so a runbook written for
// istioctl reads the same here: workloads NAMESPACE POD NAME ADDRESS NODE WAYPOINT PROTOCOL;
// services NAMESPACE SERVICE NAME SERVICE VIP WAYPOINT ENDPOINTS (healthy/total); policies
// NAMESPACE POLICY NAME ACTION SCOPE; certificates CERTIFICATE NAME TYPE STATUS VALID CERT ...

import { renderTable } from "../table.js";

export const SECTIONS = ["workloads", "services", "policies", "certificates", "all"] as const;
export type Section = (typeof SECTIONS)[number];

/** What ztunnel's /config_dump holds (the fields these tables read). */
export interface ConfigDump {
  workloads: {
    uid: string;
    namespace: string;
    name: string;
    addresses: string[];
    node: string;
    waypoint?: { destination: string };
    tunnelProtocol: string;
    status: string;
  }[];
  services: {
    namespace: string;
    name: string;
    addresses: string[];
    waypoint?: { destination: string };
    endpoints?: string[];
  }[];
  policies: { namespace: string; name: string; scope: string; action: string }[];
  certificates: {
    identity: string;
    state: string;
    serial?: string;
    notBefore?: string;
    notAfter?: string;
  }[];
}

// istioctl prints "None" where a workload or service has no waypoint.
const waypointOf = (w: { waypoint?: { destination: string } }) => w.waypoint?.destination || "None";

export function renderSections(dump: ConfigDump, section: Section): string {
  const parts: string[] = [];
  const want = (s: Section) => section === s || section === "all";
  if (want("workloads")) {
    parts.push(
      renderTable(
        ["NAMESPACE", "POD NAME", "ADDRESS", "NODE", "WAYPOINT", "PROTOCOL"],
        dump.workloads.map((w) => [
          w.namespace,
          w.name,
          w.addresses.join(","),
          w.node,
          waypointOf(w),
          w.tunnelProtocol,
        ]),
      ),
    );
  }
  if (want("services")) {
    const healthy = new Set(dump.workloads.filter((w) => w.status === "HEALTHY").map((w) => w.uid));
    parts.push(
      renderTable(
        ["NAMESPACE", "SERVICE NAME", "SERVICE VIP", "WAYPOINT", "ENDPOINTS"],
        dump.services.map((s) => {
          const eps = s.endpoints ?? [];
          return [
            s.namespace,
            s.name,
            s.addresses.join(","),
            waypointOf(s),
            `${eps.filter((uid) => healthy.has(uid)).length}/${eps.length}`,
          ];
        }),
      ),
    );
  }
  if (want("policies")) {
    parts.push(
      renderTable(
        ["NAMESPACE", "POLICY NAME", "ACTION", "SCOPE"],
        dump.policies.map((p) => [p.namespace, p.name, p.action, p.scope]),
      ),
    );
  }
  if (want("certificates")) {
    // One row per identity's leaf: the dump keeps the leaf, not the chain istioctl also lists.
    const now = Date.now();
    parts.push(
      renderTable(
        ["CERTIFICATE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"],
        dump.certificates.map((c) => [
          c.identity,
          "Leaf",
          c.state === "available" ? "Available" : c.state === "pending" ? "Pending" : "Failed",
          String(
            c.notAfter !== undefined && c.notBefore !== undefined
              ? Date.parse(c.notBefore) <= now && now < Date.parse(c.notAfter)
              : false,
          ),
          c.serial ?? "-",
          c.notAfter ?? "-",
          c.notBefore ?? "-",
        ]),
      ),
    );
  }
  return parts.join("\n\n");
}
