// The tables of `ambientctl ztunnel-config`, with istioctl's columns so a runbook written for
// istioctl reads the same here: workloads NAMESPACE POD NAME ADDRESS NODE WAYPOINT PROTOCOL;
// services NAMESPACE SERVICE NAME SERVICE VIP WAYPOINT ENDPOINTS (healthy/total); policies
// NAMESPACE POLICY NAME ACTION SCOPE; certificates CERTIFICATE NAME TYPE STATUS VALID CERT ...
// (one row per certificate of each chain); connections WORKLOAD DIRECTION LOCAL REMOTE REMOTE
// TARGET PROTOCOL.

import { renderTable } from "../table.js";

export const SECTIONS = ["workloads", "services", "policies", "certificates", "connections", "all"] as const;
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
    /** Leaf first, root last; absent while no certificate is in use. */
    chain?: { type: string; serial: string; notBefore: string; notAfter: string }[];
  }[];
  connections: {
    open: number;
    items: {
      workload: string;
      direction: "inbound" | "outbound";
      local: string;
      remote: string;
      remoteTarget?: string;
      protocol: string;
    }[];
  };
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
  if (want("certificates")) parts.push(certificatesTable(dump.certificates));
  if (want("connections")) {
    parts.push(
      renderTable(
        ["WORKLOAD", "DIRECTION", "LOCAL", "REMOTE", "REMOTE TARGET", "PROTOCOL"],
        dump.connections.items.map((c) => [
          c.workload,
          c.direction === "inbound" ? "Inbound" : "Outbound",
          c.local,
          c.remote,
          c.remoteTarget ?? "",
          c.protocol,
        ]),
      ),
    );
  }
  return parts.join("\n\n");
}

const STATUS: Record<string, string> = { available: "Available", pending: "Pending" };

/** A row per certificate of each identity's chain (leaf, intermediates, root), as istioctl prints. */
function certificatesTable(certs: ConfigDump["certificates"]): string {
  const now = Date.now();
  const valid = (c: { notBefore?: string; notAfter?: string }) =>
    String(
      c.notAfter !== undefined && c.notBefore !== undefined
        ? Date.parse(c.notBefore) <= now && now < Date.parse(c.notAfter)
        : false,
    );
  const rows = certs.flatMap((c) => {
    const status = STATUS[c.state] ?? "Failed";
    // A dump from a ztunnel without chains (older) still shows its leaf.
    const chain =
      c.chain ??
      (c.serial ? [{ type: "Leaf", serial: c.serial, notBefore: c.notBefore, notAfter: c.notAfter }] : []);
    if (chain.length === 0) return [[c.identity, "-", status, "false", "-", "-", "-"]];
    return chain.map((x) => [
      c.identity,
      x.type,
      status,
      valid(x),
      x.serial,
      x.notAfter ?? "-",
      x.notBefore ?? "-",
    ]);
  });
  return renderTable(
    ["CERTIFICATE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"],
    rows,
  );
}
