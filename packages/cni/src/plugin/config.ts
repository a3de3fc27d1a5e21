// The network configuration the runtime streams on stdin: the conflist's name and cniVersion plus
// our entry's own fields and, when chained, prevResult. Checked in libcni's skel order: JSON
// (code 6), network name (7), version (1), then our fields (7, every bad one listed at once).

import { CniCode, CniError, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from "./spec.js";

/** Where the node agent listens unless the conflist entry says otherwise. */
export const DEFAULT_AGENT_SOCKET = "/run/ambient/cni.sock";
/** Pods there are never captured (Istio's default exclusion); a config list replaces it. */
export const DEFAULT_EXCLUDE_NAMESPACES: readonly string[] = ["kube-system"];
/**
 * The mesh's own pods, as namespace/name patterns (a trailing `*` matches a prefix). The plugin
 * sees only CNI_ARGS, never labels, so names are all it can go by; the agent itself runs with
 * hostNetwork in a cluster, where the runtime does not call CNI at all.
 */
export const DEFAULT_EXCLUDE_PODS: readonly string[] = [
  "istio-system/ztunnel-*",
  "istio-system/ambient-cni-*",
];

export interface PluginConfig {
  cniVersion: string;
  name: string;
  agentSocket: string;
  excludeNamespaces: readonly string[];
  excludePods: readonly string[];
  /** The previous plugin's result, kept as given: it is printed back unchanged. */
  prevResult?: Record<string, unknown>;
}

export function parsePluginConfig(stdin: string): PluginConfig {
  const raw = decode(stdin);
  if (typeof raw.name !== "string" || raw.name === "") {
    throw new CniError(CniCode.INVALID_CONFIG, "missing network name");
  }
  // libcni reads a config without cniVersion as 0.1.0, which no chained plugin can speak.
  const cniVersion = raw.cniVersion === undefined ? "0.1.0" : raw.cniVersion;
  if (typeof cniVersion !== "string")
    throw new CniError(CniCode.INVALID_CONFIG, "cniVersion must be a string");
  if (!isSupportedVersion(cniVersion)) {
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      "incompatible CNI versions",
      `config is "${cniVersion}", plugin supports [${SUPPORTED_VERSIONS.join(", ")}]`,
    );
  }
  const problems: string[] = [];
  const agentSocket = optionalString(raw, "agentSocket", problems) ?? DEFAULT_AGENT_SOCKET;
  const excludeNamespaces = optionalStrings(raw, "excludeNamespaces", problems) ?? DEFAULT_EXCLUDE_NAMESPACES;
  const excludePods = optionalStrings(raw, "excludePods", problems) ?? DEFAULT_EXCLUDE_PODS;
  excludePods.forEach((p, i) => {
    if (!/^[^/]+\/[^/]+$/.test(p)) problems.push(`excludePods[${i}] must be "namespace/name" (got "${p}")`);
  });
  const prevResult = raw.prevResult;
  if (prevResult !== undefined && !isObject(prevResult)) problems.push("prevResult must be an object");
  if (problems.length > 0) {
    throw new CniError(CniCode.INVALID_CONFIG, `invalid ambient-cni config: ${problems.join("; ")}`);
  }
  const config: PluginConfig = { cniVersion, name: raw.name, agentSocket, excludeNamespaces, excludePods };
  if (isObject(prevResult)) config.prevResult = prevResult;
  return config;
}

/** The version to answer in: the config's when it is one we speak, else our latest. Never throws. */
export function replyVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === "string" && isSupportedVersion(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

function decode(stdin: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      CniCode.DECODE_FAILURE,
      "error decoding network config from stdin",
      (err as Error).message,
    );
  }
  if (!isObject(raw))
    throw new CniError(CniCode.DECODE_FAILURE, "network config on stdin is not a JSON object");
  return raw;
}

function optionalString(raw: Record<string, unknown>, field: string, problems: string[]): string | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") problems.push(`${field} must be a non-empty string`);
  return typeof v === "string" && v !== "" ? v : undefined;
}

function optionalStrings(
  raw: Record<string, unknown>,
  field: string,
  problems: string[],
): string[] | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    problems.push(`${field} must be an array of strings`);
    return undefined;
  }
  return v;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
