// Chaining ambient-cni into the node's primary network: the config file a runtime would pick
// (libcni's ConfFiles: the first *.conf / *.conflist / *.json by name) gets our entry appended, or
// updated where it already is. A single-plugin .conf becomes a .conflist, as Istio does. Writes are
// atomic (temp file + rename), and a file already in the wanted state is not rewritten at all, so
// the runtime's watcher sees no change on an agent restart.

import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CniInstallErrorCode, installError } from "./errors.js";

export const PLUGIN_TYPE = "ambient-cni";
const CONF_EXTENSIONS = [".conf", ".conflist", ".json"];

export type PluginEntry = { type: typeof PLUGIN_TYPE } & Record<string, unknown>;

type ConfList = Record<string, unknown> & { plugins: Record<string, unknown>[] };

export interface ChainResult {
  /** The conflist that now holds our entry. */
  file: string;
  /** False when it already held exactly this entry (nothing was written). */
  changed: boolean;
  /** The single-plugin .conf that was turned into `file` and removed, if any. */
  converted?: string;
}

/** The config file a runtime would use, or a NO_CONFIG error. */
export async function primaryConfigFile(confDir: string): Promise<string> {
  const names = await configFiles(confDir);
  const first = names[0];
  if (!first) {
    throw installError(
      CniInstallErrorCode.NO_CONFIG,
      `no CNI network config (*.conflist, *.conf, *.json) in ${confDir}; is the primary CNI installed?`,
      { confDir },
    );
  }
  return join(confDir, first);
}

export async function chainPlugin(confDir: string, entry: PluginEntry): Promise<ChainResult> {
  const file = await primaryConfigFile(confDir);
  const text = await readFile(file, "utf8");
  if (file.endsWith(".conflist")) {
    const list = parseConfList(file, text);
    const next = withEntry(list, entry);
    if (next === list) return { file, changed: false };
    await writeAtomic(file, next);
    return { file, changed: true };
  }
  // A single plugin config: the same network as a one-plugin list, then ours.
  const conf = parseConf(file, text);
  const { cniVersion, name, ...plugin } = conf;
  const list: ConfList = { cniVersion, name, plugins: [plugin] };
  const target = `${file.slice(0, file.lastIndexOf("."))}.conflist`;
  await writeAtomic(target, withEntry(list, entry), file);
  await rm(file, { force: true });
  return { file: target, changed: true, converted: file };
}

/** Removes our entry from every conflist in confDir that has it; returns the files changed. */
export async function unchainPlugin(confDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await configFiles(confDir);
  } catch {
    return [];
  }
  const changed: string[] = [];
  for (const name of names.filter((n) => n.endsWith(".conflist"))) {
    const file = join(confDir, name);
    const list = parseConfList(file, await readFile(file, "utf8"));
    const plugins = list.plugins.filter((p) => p.type !== PLUGIN_TYPE);
    if (plugins.length === list.plugins.length) continue;
    await writeAtomic(file, { ...list, plugins });
    changed.push(file);
  }
  return changed;
}

/** `list` with our entry appended or replaced in place; the same object when nothing changes. */
export function withEntry(list: ConfList, entry: PluginEntry): ConfList {
  const at = list.plugins.findIndex((p) => p.type === PLUGIN_TYPE);
  if (at >= 0 && canonical(list.plugins[at]) === canonical(entry)) return list;
  const plugins = [...list.plugins];
  if (at >= 0) plugins[at] = entry;
  else plugins.push(entry);
  return { ...list, plugins };
}

async function configFiles(confDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(confDir);
  } catch (err) {
    throw installError(
      CniInstallErrorCode.NO_CONFIG,
      `cannot read CNI config dir ${confDir}`,
      { confDir },
      err,
    );
  }
  // Dotfiles are our own temp files (and nobody's config); libcni sorts by name.
  return names.filter((n) => !n.startsWith(".") && CONF_EXTENSIONS.some((e) => n.endsWith(e))).sort();
}

function parseJsonObject(file: string, text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw malformed(file, [`not JSON: ${(err as Error).message}`]);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw malformed(file, ["not a JSON object"]);
  return raw as Record<string, unknown>;
}

function parseConfList(file: string, text: string): ConfList {
  const raw = parseJsonObject(file, text);
  const problems: string[] = [];
  if (typeof raw.name !== "string" || raw.name === "") problems.push("name is missing");
  if (!Array.isArray(raw.plugins)) problems.push("plugins must be an array");
  else {
    raw.plugins.forEach((p: unknown, i) => {
      if (typeof (p as { type?: unknown } | null)?.type !== "string") {
        problems.push(`plugins[${i}] must be an object with a string type`);
      }
    });
  }
  if (problems.length > 0) throw malformed(file, problems);
  return raw as ConfList;
}

function parseConf(file: string, text: string): Record<string, unknown> {
  const raw = parseJsonObject(file, text);
  const problems: string[] = [];
  if (typeof raw.name !== "string" || raw.name === "") problems.push("name is missing");
  if (typeof raw.type !== "string") problems.push("type is missing");
  if (problems.length > 0) throw malformed(file, problems);
  return raw;
}

function malformed(file: string, problems: string[]) {
  return installError(
    CniInstallErrorCode.CONFIG_MALFORMED,
    `CNI network config ${file} is malformed: ${problems.join("; ")}`,
    { file, problems },
  );
}

/**
 * Temp file + rename in the same directory, so a runtime never reads half a file. The temp name
 * starts with a dot and ends in .tmp: no runtime takes it for a network config.
 */
async function writeAtomic(file: string, content: unknown, modeFrom: string = file): Promise<void> {
  let mode = 0o644;
  try {
    mode = (await stat(modeFrom)).mode & 0o777;
  } catch {
    // a new file
  }
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode });
  await rename(tmp, file);
}

/** JSON with sorted keys: equal for semantically equal values, whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}
