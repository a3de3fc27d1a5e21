// Reads what a control plane serves by speaking Delta ADS to it, exactly as a ztunnel would, and
// turns Istio's workload resources into rows for tables or JSON.

import { hostname } from "node:os";
import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  type Authorization,
  createLogger,
  DeltaAdsClient,
  decodeAddress,
  decodeAuthorization,
  type Match,
  type Service,
  type StringMatch,
  type Workload,
  type XdsResourceHandler,
} from "@ambient/core";

export interface MeshView {
  workloads: Workload[];
  services: Service[];
  policies: Authorization[];
}

/** Subscribes to everything, waits for the first full response of each type, then disconnects. */
export async function fetchMeshView(address: string, timeoutMs = 10_000): Promise<MeshView> {
  const workloads = new Map<string, Workload>();
  const services = new Map<string, Service>();
  const policies = new Map<string, Authorization>();
  const addressHandler: XdsResourceHandler<Address> = {
    typeUrl: ADDRESS_TYPE_URL,
    decode: (name, bytes) => decodeAddress(bytes, name),
    apply: ({ upserts, removes }) => {
      for (const [name, a] of upserts) {
        if (a.workload) workloads.set(name, a.workload);
        else services.set(name, a.service);
      }
      for (const name of removes) {
        workloads.delete(name);
        services.delete(name);
      }
    },
  };
  const authorizationHandler: XdsResourceHandler<Authorization> = {
    typeUrl: AUTHORIZATION_TYPE_URL,
    decode: (name, bytes) => decodeAuthorization(bytes, name),
    apply: ({ upserts, removes }) => {
      for (const [name, p] of upserts) policies.set(name, p);
      for (const name of removes) policies.delete(name);
    },
  };
  const client = new DeltaAdsClient({
    address,
    node: { id: `ambientctl~${hostname()}~${process.pid}`, cluster: "ambientctl" },
    logger: createLogger({ level: "silent" }),
    handlers: [addressHandler, authorizationHandler],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer from the control plane at ${address} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      client.once("synced", () => {
        clearTimeout(timer);
        resolve();
      });
      client.start();
    });
  } finally {
    client.close();
  }
  return {
    workloads: [...workloads.values()],
    services: [...services.values()],
    policies: [...policies.values()],
  };
}

export function ipToString(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) parts.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return parts.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

export function workloadRows(ws: Workload[]): string[][] {
  return ws
    .slice()
    .sort((a, b) => a.uid.localeCompare(b.uid))
    .map((w) => [
      w.namespace,
      w.name,
      w.addresses.map(ipToString).join(",") || "-",
      w.node || "-",
      w.serviceAccount,
      w.tunnelProtocol,
      w.status,
      `${w.canonicalName}/${w.canonicalRevision}`,
      w.authorizationPolicies.join(",") || "-",
    ]);
}
export const WORKLOAD_HEADERS = [
  "NAMESPACE",
  "NAME",
  "ADDRESS",
  "NODE",
  "SERVICE ACCOUNT",
  "PROTOCOL",
  "STATUS",
  "APP/VERSION",
  "POLICIES",
];

export function serviceRows(ss: Service[], ws: Workload[]): string[][] {
  return ss
    .slice()
    .sort((a, b) => `${a.namespace}/${a.hostname}`.localeCompare(`${b.namespace}/${b.hostname}`))
    .map((s) => {
      const key = `${s.namespace}/${s.hostname}`;
      const endpoints = ws.filter((w) => w.services[key]).length;
      return [
        s.namespace,
        s.name,
        s.hostname,
        s.addresses.map((a) => ipToString(a.address)).join(",") || "None",
        s.ports.map((p) => `${p.servicePort}->${p.targetPort || "named"}`).join(","),
        String(endpoints),
      ];
    });
}
export const SERVICE_HEADERS = ["NAMESPACE", "NAME", "HOSTNAME", "VIP", "PORTS", "ENDPOINTS"];

export function policyRows(ps: Authorization[]): string[][] {
  return ps
    .slice()
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))
    .map((p) => [p.namespace, p.name, p.scope, p.action, String(p.rules.length), summarizeRules(p)]);
}
export const POLICY_HEADERS = ["NAMESPACE", "NAME", "SCOPE", "ACTION", "RULES", "SUMMARY"];

function summarizeRules(p: Authorization): string {
  if (p.rules.length === 0) return p.action === "ALLOW" ? "matches nothing" : "-";
  return p.rules
    .map((r) =>
      r.clauses.length === 0
        ? "any"
        : r.clauses.map((c) => c.matches.map(summarizeMatch).join(" | ")).join(" & "),
    )
    .join("; ");
}

function summarizeMatch(m: Match): string {
  const parts: string[] = [];
  const strs = (l: StringMatch[]) => l.map(stringMatch).join(",");
  if (m.principals.length) parts.push(`principal=${strs(m.principals)}`);
  if (m.notPrincipals.length) parts.push(`principal!=${strs(m.notPrincipals)}`);
  if (m.namespaces.length) parts.push(`ns=${strs(m.namespaces)}`);
  if (m.notNamespaces.length) parts.push(`ns!=${strs(m.notNamespaces)}`);
  const cidrs = (l: { address: Uint8Array; length: number }[]) =>
    l.map((a) => `${ipToString(a.address)}/${a.length}`).join(",");
  if (m.sourceIps.length) parts.push(`src=${cidrs(m.sourceIps)}`);
  if (m.notSourceIps.length) parts.push(`src!=${cidrs(m.notSourceIps)}`);
  if (m.destinationIps.length) parts.push(`dst=${cidrs(m.destinationIps)}`);
  if (m.notDestinationIps.length) parts.push(`dst!=${cidrs(m.notDestinationIps)}`);
  if (m.destinationPorts.length) parts.push(`port=${m.destinationPorts.join(",")}`);
  if (m.notDestinationPorts.length) parts.push(`port!=${m.notDestinationPorts.join(",")}`);
  return parts.join(" ") || "any";
}

function stringMatch(s: StringMatch): string {
  if ("exact" in s) return s.exact;
  if ("prefix" in s) return `${s.prefix}*`;
  if ("suffix" in s) return `*${s.suffix}`;
  return "<present>";
}
