// `ambientctl ztunnel-config [workloads|services|policies|certificates|all] --node-ip IP`: what one
// ztunnel holds, read from its admin endpoint (/config_dump on 15000), as tables or JSON.

import { type EnvSource, type OptionSpec, parseOptions } from "@ambient/core";
import { renderTable } from "../table.js";
import { normalizeShortFlags } from "./xds.js";

export const ZTUNNEL_CONFIG_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "node-ip",
    env: "NODE_IP",
    kind: "string",
    default: "127.0.0.1",
    description: "the ztunnel's admin address",
  },
  { flag: "admin-port", kind: "int", default: "15000", description: "admin port" },
  { flag: "output", kind: "string", default: "table", description: "table|json" },
];

const SECTIONS = ["workloads", "services", "policies", "certificates", "all"] as const;
type Section = (typeof SECTIONS)[number];

interface Dump {
  node: string;
  workloads: {
    namespace: string;
    name: string;
    addresses: string[];
    node: string;
    serviceAccount: string;
    tunnelProtocol: string;
    status: string;
  }[];
  services: {
    namespace: string;
    name: string;
    hostname: string;
    addresses: { address: string }[] | string[];
    endpoints?: string[];
  }[];
  policies: { namespace: string; name: string; scope: string; action: string; rules: unknown[] }[];
  certificates: {
    identity: string;
    state: string;
    serial?: string;
    notAfter?: string;
    nextRefresh?: string;
    lastError?: string;
  }[];
}

export async function ztunnelConfigCommand(
  argv: string[],
  env: EnvSource,
  out: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parseOptions(ZTUNNEL_CONFIG_OPTIONS, normalizeShortFlags(argv), env);
  const section = (positionals[0] ?? "all") as Section;
  if (!SECTIONS.includes(section))
    throw new Error(`unknown section "${section}": use ${SECTIONS.join(", ")}`);
  const url = `http://${values["node-ip"]}:${values["admin-port"]}/config_dump`;
  let dump: Dump;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    dump = (await res.json()) as Dump;
  } catch (err) {
    throw new Error(`cannot read ${url}: ${(err as Error).message}`);
  }
  if (values["output"] === "json") {
    out(JSON.stringify(section === "all" ? dump : dump[section], null, 2));
    return 0;
  }
  const parts: string[] = [];
  if (section === "workloads" || section === "all") {
    parts.push(
      renderTable(
        ["NAMESPACE", "NAME", "ADDRESS", "NODE", "SERVICE ACCOUNT", "PROTOCOL", "STATUS"],
        dump.workloads.map((w) => [
          w.namespace,
          w.name,
          w.addresses.join(","),
          w.node,
          w.serviceAccount,
          w.tunnelProtocol,
          w.status,
        ]),
      ),
    );
  }
  if (section === "services" || section === "all") {
    parts.push(
      renderTable(
        ["NAMESPACE", "NAME", "HOSTNAME", "VIP", "ENDPOINTS"],
        dump.services.map((s) => [
          s.namespace,
          s.name,
          s.hostname,
          s.addresses.map((a) => (typeof a === "string" ? a : a.address)).join(","),
          String(s.endpoints?.length ?? "-"),
        ]),
      ),
    );
  }
  if (section === "policies" || section === "all") {
    parts.push(
      renderTable(
        ["NAMESPACE", "NAME", "SCOPE", "ACTION", "RULES"],
        dump.policies.map((p) => [p.namespace, p.name, p.scope, p.action, String(p.rules.length)]),
      ),
    );
  }
  if (section === "certificates" || section === "all") {
    parts.push(
      renderTable(
        ["IDENTITY", "STATE", "SERIAL", "EXPIRES", "NEXT REFRESH", "LAST ERROR"],
        dump.certificates.map((c) => [
          c.identity,
          c.state,
          c.serial ?? "-",
          c.notAfter ?? "-",
          c.nextRefresh ?? "-",
          c.lastError ?? "-",
        ]),
      ),
    );
  }
  out(parts.join("\n\n"));
  return 0;
}
