// `ambientctl xds [workloads|services|policies|all] [-o table|json]`: what the control plane
// serves, read over Delta ADS like a ztunnel reads it.

import { type EnvSource, type OptionSpec, parseOptions } from "@ambient/core";
import { renderTable } from "../table.js";
import {
  fetchMeshView,
  ipToString,
  type MeshView,
  POLICY_HEADERS,
  policyRows,
  SERVICE_HEADERS,
  serviceRows,
  WORKLOAD_HEADERS,
  workloadRows,
} from "../xds-view.js";

export const XDS_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "xds-address",
    env: "XDS_ADDRESS",
    kind: "string",
    default: "127.0.0.1:15010",
    description: "control plane gRPC address",
  },
  { flag: "output", kind: "string", default: "table", description: "table|json" },
  {
    flag: "timeout",
    kind: "duration",
    default: "10s",
    description: "how long to wait for the control plane",
  },
];

const SECTIONS = ["workloads", "services", "policies", "all"] as const;
type Section = (typeof SECTIONS)[number];

export async function xdsCommand(argv: string[], env: EnvSource, out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseOptions(XDS_OPTIONS, normalizeShortFlags(argv), env);
  const section = (positionals[0] ?? "all") as Section;
  if (!SECTIONS.includes(section))
    throw new Error(`unknown section "${section}": use ${SECTIONS.join(", ")}`);
  const output = values["output"] as string;
  if (output !== "table" && output !== "json")
    throw new Error(`--output must be table or json, not "${output}"`);
  const view = await fetchMeshView(values["xds-address"] as string, values["timeout"] as number);
  out(
    output === "json" ? JSON.stringify(viewToJson(view, section), jsonBytes, 2) : renderView(view, section),
  );
  return 0;
}

export function renderView(view: MeshView, section: Section): string {
  const parts: string[] = [];
  if (section === "workloads" || section === "all")
    parts.push(renderTable(WORKLOAD_HEADERS, workloadRows(view.workloads)));
  if (section === "services" || section === "all")
    parts.push(renderTable(SERVICE_HEADERS, serviceRows(view.services, view.workloads)));
  if (section === "policies" || section === "all")
    parts.push(renderTable(POLICY_HEADERS, policyRows(view.policies)));
  return parts.join("\n\n");
}

function viewToJson(view: MeshView, section: Section): unknown {
  if (section === "all") return view;
  return view[section];
}

/** IP bytes print as dotted/colon text in JSON rather than as byte arrays. */
function jsonBytes(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return ipToString(value);
  // Buffer.toJSON runs before the replacer sees the value.
  if (value && (value as { type?: string }).type === "Buffer") {
    return ipToString(Uint8Array.from((value as { data: number[] }).data));
  }
  return value;
}

/** kubectl habits: `-o json`, `-ojson`. */
export function normalizeShortFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-o") out.push("--output", argv[++i] ?? "");
    else if (a.startsWith("-o") && !a.startsWith("--")) out.push("--output", a.slice(2));
    else if (a === "-f") out.push("--file", argv[++i] ?? "");
    else out.push(a);
  }
  return out;
}
