// A container runtime's CNI driver, reduced to what libcni does for a network config list:
// ADD runs the plugins in order, each fed the previous one's result; DEL runs them in reverse with
// the cached ADD result; CHECK runs them in order with it. Plugins are executed inside the node's
// netns (the bridge plugin creates cni0 where it runs), with the spec's CNI_* environment.

import { access, constants, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { NetnsErrorCode, netnsError } from "./errors.js";
import { commandFailure, run } from "./exec.js";

export interface PluginConf {
  type: string;
  [field: string]: unknown;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
  [field: string]: unknown;
}

export interface RuntimeConf {
  containerId: string;
  /** Path of the pod's netns (CNI_NETNS); empty on a DEL whose netns is already gone. */
  netns: string;
  /** CNI_IFNAME; runtimes use eth0. */
  ifName: string;
  /** CNI_ARGS as key/value pairs, in order (see k8sArgs). */
  args: readonly (readonly [string, string])[];
}

/** The parts of a CNI 1.0 result we read; plugins may add more, which is kept. */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface CniRuntimeOptions {
  /** CNI_PATH: directories searched, in order, for a plugin named by `type`. */
  path: readonly string[];
  /** Where ADD results are cached for DEL and CHECK (libcni's /var/lib/cni). */
  cacheDir: string;
  /** The netns the plugins run in (the node's); the runtime's own when absent. */
  pluginNetns?: string;
  /** Environment the CNI_* variables are added to. Default: this process's, as libcni does. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Per plugin invocation. Default 30 s; ambient-cni itself gives up on the agent after 5 s. */
  timeoutMs?: number;
}

/** What libcni keeps per attachment (its cniCacheV1 record), so DEL can hand plugins prevResult. */
interface CachedAttachment {
  kind: "cniCacheV1";
  containerId: string;
  /** The network config list as JSON (libcni stores the bytes, base64 in JSON). */
  config: string;
  ifName: string;
  networkName: string;
  cniArgs: (readonly [string, string])[];
  result: CniResult;
}

/** CNI_ARGS as containerd and CRI-O pass them for a Kubernetes pod. */
export function k8sArgs(pod: {
  namespace: string;
  name: string;
  containerId: string;
  uid?: string;
}): [string, string][] {
  const args: [string, string][] = [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAMESPACE", pod.namespace],
    ["K8S_POD_NAME", pod.name],
    ["K8S_POD_INFRA_CONTAINER_ID", pod.containerId],
  ];
  if (pod.uid) args.push(["K8S_POD_UID", pod.uid]);
  return args;
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const DEFAULT_TIMEOUT_MS = 30_000;

export class CniRuntime {
  constructor(private readonly opts: CniRuntimeOptions) {}

  async addNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<CniResult> {
    checkRuntimeConf(rt);
    let prev: CniResult | undefined;
    for (const plugin of list.plugins) {
      const out = await this.exec("ADD", list, plugin, prev, rt);
      prev = parseResult(plugin, out);
    }
    if (!prev) {
      throw netnsError(NetnsErrorCode.CNI_CONFIG_INVALID, `network ${list.name} has no plugins`, {
        network: list.name,
      });
    }
    await this.cache(list, rt, prev);
    return prev;
  }

  async delNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    checkRuntimeConf(rt);
    // A DEL without a cached result (ADD never finished, or a second DEL) still runs every
    // plugin: DEL must be idempotent, and this is how runtimes clean up after a failed ADD.
    const cached = await this.cachedResult(list.name, rt);
    for (const plugin of [...list.plugins].reverse()) {
      await this.exec("DEL", list, plugin, cached?.result, rt);
    }
    await rm(this.cachePath(list.name, rt), { force: true });
  }

  async checkNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    checkRuntimeConf(rt);
    if (list.disableCheck) return;
    const cached = await this.cachedResult(list.name, rt);
    if (!cached) {
      throw netnsError(
        NetnsErrorCode.CNI_NO_CACHED_RESULT,
        `no cached ADD result for network ${list.name}, container ${rt.containerId}, ${rt.ifName}`,
        { network: list.name, containerId: rt.containerId, ifName: rt.ifName },
      );
    }
    for (const plugin of list.plugins) await this.exec("CHECK", list, plugin, cached.result, rt);
  }

  /** The cached ADD for this attachment, or undefined. */
  async cachedResult(
    networkName: string,
    rt: Pick<RuntimeConf, "containerId" | "ifName">,
  ): Promise<{ list: NetworkConfigList; result: CniResult } | undefined> {
    let text: string;
    try {
      text = await readFile(this.cachePath(networkName, rt), "utf8");
    } catch {
      return undefined;
    }
    const c = JSON.parse(text) as CachedAttachment;
    return { list: JSON.parse(Buffer.from(c.config, "base64").toString("utf8")), result: c.result };
  }

  private cachePath(networkName: string, rt: Pick<RuntimeConf, "containerId" | "ifName">): string {
    return join(this.opts.cacheDir, "results", `${networkName}-${rt.containerId}-${rt.ifName}`);
  }

  private async cache(list: NetworkConfigList, rt: RuntimeConf, result: CniResult): Promise<void> {
    const file = this.cachePath(list.name, rt);
    const record: CachedAttachment = {
      kind: "cniCacheV1",
      containerId: rt.containerId,
      config: Buffer.from(JSON.stringify(list)).toString("base64"),
      ifName: rt.ifName,
      networkName: list.name,
      cniArgs: [...rt.args],
      result,
    };
    await mkdir(dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify(record));
    await rename(`${file}.tmp`, file);
  }

  private async exec(
    command: "ADD" | "DEL" | "CHECK",
    list: NetworkConfigList,
    plugin: PluginConf,
    prevResult: CniResult | undefined,
    rt: RuntimeConf,
  ): Promise<string> {
    const binary = await findPlugin(plugin.type, this.opts.path);
    // libcni's buildOneConfig: every plugin sees the list's name and version, and the result so far.
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (prevResult) conf.prevResult = prevResult;
    const env: NodeJS.ProcessEnv = {
      ...(this.opts.baseEnv ?? process.env),
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_ARGS: rt.args.map(([k, v]) => `${k}=${v}`).join(";"),
      CNI_IFNAME: rt.ifName,
      CNI_PATH: this.opts.path.join(":"),
    };
    const [cmd, args] = this.opts.pluginNetns
      ? ["nsenter", [`--net=${this.opts.pluginNetns}`, binary]]
      : [binary, []];
    try {
      const { stdout } = await run(cmd, args, {
        input: JSON.stringify(conf),
        env,
        timeoutMs: this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      });
      return stdout;
    } catch (err) {
      throw pluginError(plugin.type, command, err);
    }
  }
}

/** libcni's FindInPath: the first directory in CNI_PATH holding an executable named `type`. */
async function findPlugin(type: string, path: readonly string[]): Promise<string> {
  if (!type || type.includes("/")) {
    throw netnsError(
      NetnsErrorCode.CNI_CONFIG_INVALID,
      `plugin type ${JSON.stringify(type)} is not a plugin name`,
    );
  }
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw netnsError(
    NetnsErrorCode.CNI_PLUGIN_NOT_FOUND,
    `failed to find plugin "${type}" in path [${path.join(" ")}]`,
    { plugin: type, path },
  );
}

/** A plugin's error is its stdout ({code, msg, details}); with nothing there, its stderr. */
function pluginError(type: string, command: string, err: unknown): Error {
  const failure = commandFailure(err);
  if (!failure) return err as Error;
  const base = { plugin: type, command, exitCode: failure.exitCode, stderr: failure.stderr.trim() };
  let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    parsed = failure.stdout.trim() ? JSON.parse(failure.stdout) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed === "object") {
    const code = typeof parsed.code === "number" ? parsed.code : undefined;
    const msg = typeof parsed.msg === "string" ? parsed.msg : JSON.stringify(parsed);
    const details = typeof parsed.details === "string" && parsed.details ? `; ${parsed.details}` : "";
    return netnsError(
      NetnsErrorCode.CNI_PLUGIN_FAILED,
      `CNI plugin ${type} ${command} failed (code ${code ?? "?"}): ${msg}${details}`,
      { ...base, cniCode: code, msg, details: parsed.details },
      err,
    );
  }
  const why = failure.stderr.trim() || failure.stdout.trim() || (err as Error).message;
  return netnsError(
    NetnsErrorCode.CNI_PLUGIN_FAILED,
    `CNI plugin ${type} ${command} failed: ${why}`,
    base,
    err,
  );
}

function parseResult(plugin: PluginConf, stdout: string): CniResult {
  try {
    const r = JSON.parse(stdout) as CniResult;
    if (r && typeof r === "object" && typeof r.cniVersion === "string") return r;
  } catch {
    // reported below
  }
  throw netnsError(
    NetnsErrorCode.CNI_PLUGIN_FAILED,
    `CNI plugin ${plugin.type} ADD printed no result: ${JSON.stringify(stdout.slice(0, 200))}`,
    { plugin: plugin.type, command: "ADD", stdout },
  );
}

function checkRuntimeConf(rt: RuntimeConf): void {
  if (!CONTAINER_ID_RE.test(rt.containerId)) {
    throw netnsError(
      NetnsErrorCode.NAME_INVALID,
      `container id ${JSON.stringify(rt.containerId)} is invalid`,
    );
  }
  if (
    !rt.ifName ||
    rt.ifName.length > 15 ||
    /[/:\s]/.test(rt.ifName) ||
    rt.ifName === "." ||
    rt.ifName === ".."
  ) {
    throw netnsError(NetnsErrorCode.NAME_INVALID, `interface name ${JSON.stringify(rt.ifName)} is invalid`);
  }
}

/** The first IPv4 address of a result, without its prefix length. */
export function firstIpv4(result: CniResult): string | undefined {
  for (const { address } of result.ips ?? []) {
    const ip = address.split("/")[0] ?? "";
    if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return ip;
  }
  return undefined;
}
