// Puts ambient-cni on a node: a self-contained copy of the compiled plugin under
// <binDir>/ambient-cni.d/<content hash>/ (node builtins only, so nothing else is needed; with
// `copyNode`, the Node.js binary too), a #!/bin/sh wrapper <binDir>/ambient-cni that execs it, and
// our entry chained into the node's network config. Every step is atomic (new directory, then
// wrapper by rename), so a runtime executing the plugin mid-upgrade runs either the old copy or the
// new one, never half of one.

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exists } from "../fs.js";
import { DEFAULT_EXCLUDE_NAMESPACES, DEFAULT_EXCLUDE_PODS } from "../plugin/config.js";
import { type ChainResult, chainPlugin, PLUGIN_TYPE, type PluginEntry, unchainPlugin } from "./conflist.js";
import { CniInstallErrorCode, installError } from "./errors.js";

export const PLUGIN_BINARY = PLUGIN_TYPE;
export const PLUGIN_DIR = `${PLUGIN_TYPE}.d`;
/** The compiled plugin: from src/install and dist/install alike, the package's dist/plugin. */
const BUILT_PLUGIN_DIR = fileURLToPath(new URL("../../dist/plugin/", import.meta.url));
const ENTRY_FILE = "ambient-cni.js";
/** The copied Node.js binary's name in the plugin directory. */
export const BUNDLED_NODE = "node";

export interface InstallOptions {
  /** Where the runtime looks for plugins (CNI_PATH), e.g. /opt/cni/bin. */
  binDir: string;
  /** The runtime's network config directory, e.g. /etc/cni/net.d. */
  confDir: string;
  /** The agent's CNI socket, written into our conflist entry. */
  agentSocket: string;
  excludeNamespaces?: readonly string[];
  excludePods?: readonly string[];
  /** The compiled plugin to copy (its *.js). Default: this package's dist/plugin. */
  pluginDir?: string;
  /** The node binary the wrapper execs; absolute, since runtimes exec plugins with their own PATH. */
  nodePath?: string;
  /**
   * Copy `nodePath` next to the plugin and exec that copy. The plugin runs on the node (the runtime
   * execs it), where an agent running in a container has no Node.js at its own path; ~120 MB, once
   * per version, like the static plugin binaries other CNI agents copy there.
   */
  copyNode?: boolean;
}

export interface InstallResult {
  /** The wrapper the runtime executes. */
  binary: string;
  /** The directory the wrapper runs the plugin from. */
  pluginDir: string;
  chain: ChainResult;
}

export async function installPlugin(o: InstallOptions): Promise<InstallResult> {
  const { binary, pluginDir } = await installBinary(
    o.binDir,
    o.pluginDir ?? BUILT_PLUGIN_DIR,
    o.nodePath ?? process.execPath,
    o.copyNode ?? false,
  );
  // The binary first: a chained entry whose binary is missing would fail every pod's ADD.
  const chain = await chainPlugin(o.confDir, pluginEntry(o));
  return { binary, pluginDir, chain };
}

/** Removes our entry from the node's network config and the binary (uninstall; an upgrade just installs again). */
export async function uninstallPlugin(
  o: Pick<InstallOptions, "binDir" | "confDir">,
): Promise<{ unchained: string[] }> {
  // The entry first: once it is gone no runtime will look for the binary.
  const unchained = await unchainPlugin(o.confDir);
  await rm(join(o.binDir, PLUGIN_BINARY), { force: true });
  await rm(join(o.binDir, PLUGIN_DIR), { recursive: true, force: true });
  return { unchained };
}

export function pluginEntry(
  o: Pick<InstallOptions, "agentSocket" | "excludeNamespaces" | "excludePods">,
): PluginEntry {
  return {
    type: PLUGIN_TYPE,
    agentSocket: o.agentSocket,
    excludeNamespaces: [...(o.excludeNamespaces ?? DEFAULT_EXCLUDE_NAMESPACES)],
    excludePods: [...(o.excludePods ?? DEFAULT_EXCLUDE_PODS)],
  };
}

async function installBinary(
  binDir: string,
  sourceDir: string,
  nodePath: string,
  copyNode: boolean,
): Promise<{ binary: string; pluginDir: string }> {
  const files = await pluginFiles(sourceDir);
  const hash = createHash("sha256");
  for (const [name, content] of files) hash.update(name).update("\0").update(content).update("\0");
  // A new Node.js is a new version of what runs on the node, even with the same plugin files.
  if (copyNode) await hashFile(hash.update(BUNDLED_NODE).update("\0"), nodePath);
  const version = hash.digest("hex").slice(0, 12);
  const root = join(binDir, PLUGIN_DIR);
  const pluginDir = join(root, version);
  await mkdir(root, { recursive: true });
  if (!(await exists(pluginDir))) {
    const tmp = join(root, `.${version}.${process.pid}.tmp`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    for (const [name, content] of files) await writeFile(join(tmp, name), content);
    // The compiled files are ES modules; without this, node would read them as CommonJS.
    await writeFile(join(tmp, "package.json"), `${JSON.stringify({ type: "module", private: true })}\n`);
    await writeFile(
      join(tmp, ENTRY_FILE),
      'import { main } from "./main.js";\n\nprocess.exitCode = await main(process.env);\n',
    );
    if (copyNode) {
      try {
        await copyFile(nodePath, join(tmp, BUNDLED_NODE));
      } catch (err) {
        throw installError(
          CniInstallErrorCode.NODE_NOT_COPIED,
          `cannot copy Node.js (${nodePath}) next to the plugin in ${tmp}: ${(err as Error).message}`,
          { nodePath, binDir },
          err,
        );
      }
      await chmod(join(tmp, BUNDLED_NODE), 0o755);
    }
    try {
      await rename(tmp, pluginDir);
    } catch (err) {
      // Another installer got there first with the same content: keep theirs.
      await rm(tmp, { recursive: true, force: true });
      if (!(await exists(pluginDir))) throw err;
    }
  }
  const binary = join(binDir, PLUGIN_BINARY);
  const tmpBinary = join(binDir, `.${PLUGIN_BINARY}.${process.pid}.tmp`);
  await writeFile(tmpBinary, wrapper(copyNode ? undefined : nodePath, version), { mode: 0o755 });
  await rename(tmpBinary, binary);
  // Older copies go once the wrapper no longer points at them.
  for (const name of await readdir(root)) {
    if (name !== version) await rm(join(root, name), { recursive: true, force: true });
  }
  return { binary, pluginDir };
}

/**
 * The copy is found next to the wrapper ($0), not at an absolute path: the bin dir may be mounted
 * elsewhere where the installer runs (Istio's /host/opt/cni/bin). Runtimes exec plugins by full
 * path, so a parameter expansion does it without spawning dirname. Without `nodePath`, the
 * Node.js copied into the plugin directory runs it.
 */
function wrapper(nodePath: string | undefined, version: string): string {
  const dir = `"$here/${PLUGIN_DIR}/${version}`;
  const node = nodePath === undefined ? `${dir}/${BUNDLED_NODE}"` : shellQuote(nodePath);
  return [
    "#!/bin/sh",
    "# ambient-cni: installed by ambient-cni-agent; replaced on upgrade, removed on uninstall.",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${0%/*} is shell, not a JS template.
    'case "$0" in */*) here="${0%/*}" ;; *) here="$(dirname "$(command -v "$0")")" ;; esac',
    `exec ${node} ${dir}/${ENTRY_FILE}" "$@"`,
    "",
  ].join("\n");
}

async function hashFile(hash: Hash, path: string): Promise<void> {
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (err) {
    throw installError(
      CniInstallErrorCode.NODE_NOT_COPIED,
      `cannot read Node.js (${path}) to copy it next to the plugin: ${(err as Error).message}`,
      { nodePath: path },
      err,
    );
  }
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function pluginFiles(sourceDir: string): Promise<[string, Buffer][]> {
  let names: string[];
  try {
    names = await readdir(sourceDir);
  } catch (err) {
    throw notBuilt(sourceDir, err);
  }
  const js = names.filter((n) => n.endsWith(".js") && !n.endsWith(".test.js")).sort();
  if (!js.includes("main.js")) throw notBuilt(sourceDir);
  return Promise.all(js.map(async (n): Promise<[string, Buffer]> => [n, await readFile(join(sourceDir, n))]));
}

function notBuilt(sourceDir: string, cause?: unknown) {
  return installError(
    CniInstallErrorCode.PLUGIN_NOT_BUILT,
    `the compiled CNI plugin is not in ${sourceDir} (no main.js); build @ambient/cni first`,
    { sourceDir },
    cause,
  );
}
