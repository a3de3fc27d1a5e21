// What each CNI command does. The plugin changes nothing itself: ADD tells the node agent about
// the pod (which decides enrolment and writes the rules) and hands the previous plugin's result
// back unchanged; DEL tells it the pod is gone and never fails because of the agent; STATUS asks
// whether the agent is there to serve ADDs.

import { isIP } from "node:net";
import { type AgentAnswer, isAgentCallError } from "./agent-client.js";
import { isObject, type PluginConfig } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError, versionAtLeast } from "./spec.js";

/** The kubelet gives a whole sandbox 4 minutes; our share is small so a dead agent fails fast. */
export const AGENT_TIMEOUT_MS = 5_000;

export interface PluginDeps {
  callAgent(
    socketPath: string,
    method: "GET" | "POST",
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<AgentAnswer>;
  netnsExists(path: string): boolean;
  /** One line on stderr: runtimes keep it in their logs, and stdout belongs to the protocol. */
  log(line: string): void;
  timeoutMs: number;
}

/** Runs one command; returns what goes to stdout on success (nothing for DEL, CHECK, STATUS, GC). */
export async function runCommand(
  env: CniEnv,
  config: PluginConfig,
  deps: PluginDeps,
): Promise<string | undefined> {
  switch (env.command) {
    case "ADD":
      return add(env, config, deps);
    case "DEL":
      await del(env, config, deps);
      return undefined;
    case "CHECK":
      // Nothing to verify that would not also fail the pod during a short agent restart, and a
      // runtime may treat a failed CHECK as permanent: config and environment were checked already.
      requireVersion(config, "CHECK", "0.4.0");
      return undefined;
    case "STATUS":
      requireVersion(config, "STATUS", "1.1.0");
      await status(config, deps);
      return undefined;
    case "GC":
      // The agent reconciles its pods against the netns that exist; nothing is kept per attachment here.
      requireVersion(config, "GC", "1.1.0");
      return undefined;
    case "VERSION":
      throw new CniError(CniCode.INTERNAL, "VERSION is answered before the config is read");
  }
}

async function add(env: CniEnv, config: PluginConfig, deps: PluginDeps): Promise<string> {
  const result = passThrough(config);
  const pod = podOf(env);
  const skip = skipReason(pod, config);
  if (skip || !pod) {
    deps.log(`ambient-cni ADD ${env.containerId}: ${skip}; not telling the node agent`);
    return result;
  }
  if (!deps.netnsExists(env.netns)) {
    throw new CniError(
      CniCode.UNKNOWN_CONTAINER,
      `network namespace ${env.netns} does not exist`,
      `pod ${pod.namespace}/${pod.name}, container ${env.containerId}`,
    );
  }
  const request = {
    containerId: env.containerId,
    netns: env.netns,
    ifName: env.ifName,
    podName: pod.name,
    podNamespace: pod.namespace,
    ips: config.prevResult ? podIps(config.prevResult) : [],
  };
  let answer: AgentAnswer;
  try {
    answer = await deps.callAgent(config.agentSocket, "POST", "/v1/cni/add", request, deps.timeoutMs);
  } catch (err) {
    throw agentFailure(err, `pod ${pod.namespace}/${pod.name}`);
  }
  if (answer.status !== 200) {
    const why = typeof answer.body.error === "string" ? answer.body.error : JSON.stringify(answer.body);
    throw new CniError(
      CniCode.AGENT_REJECTED,
      `the node agent refused pod ${pod.namespace}/${pod.name}: ${why}`,
      `HTTP ${answer.status} from ${config.agentSocket}`,
    );
  }
  if (answer.body.ok !== true) {
    throw new CniError(
      CniCode.AGENT_PROTOCOL,
      `the node agent at ${config.agentSocket} answered 200 without "ok": true`,
      JSON.stringify(answer.body),
    );
  }
  return result;
}

async function del(env: CniEnv, config: PluginConfig, deps: PluginDeps): Promise<void> {
  const pod = podOf(env);
  const skip = skipReason(pod, config);
  if (skip || !pod) return;
  const request = {
    containerId: env.containerId,
    ...(env.netns ? { netns: env.netns } : {}),
    ifName: env.ifName,
    podName: pod.name,
    podNamespace: pod.namespace,
  };
  // A failed DEL stops the runtime before the earlier plugins' DELs (IPs would leak) and blocks
  // the sandbox's removal; the agent forgets pods whose netns is gone on its own, so log and go on.
  try {
    const answer = await deps.callAgent(config.agentSocket, "POST", "/v1/cni/del", request, deps.timeoutMs);
    if (answer.status !== 200) {
      deps.log(
        `ambient-cni DEL ${env.containerId}: the node agent answered HTTP ${answer.status} for pod ${pod.namespace}/${pod.name}: ${JSON.stringify(answer.body)}; ignored`,
      );
    }
  } catch (err) {
    deps.log(`ambient-cni DEL ${env.containerId}: ${(err as Error).message}; ignored (DEL must succeed)`);
  }
}

async function status(config: PluginConfig, deps: PluginDeps): Promise<void> {
  let answer: AgentAnswer;
  try {
    answer = await deps.callAgent(config.agentSocket, "GET", "/v1/cni/status", undefined, deps.timeoutMs);
  } catch (err) {
    throw new CniError(CniCode.NOT_AVAILABLE, (err as Error).message, "ADDs for ambient pods would fail now");
  }
  if (answer.status !== 200) {
    throw new CniError(
      CniCode.NOT_AVAILABLE,
      `the node agent at ${config.agentSocket} is not ready (HTTP ${answer.status})`,
      JSON.stringify(answer.body),
    );
  }
}

/** The ADD result: prevResult as given, in the config's version, or an empty result without one. */
function passThrough(config: PluginConfig): string {
  // Without prevResult we are first in the chain, which is a misconfiguration for a plugin that
  // adds no interface, but the spec still wants a result: an empty one, as Istio's plugin prints.
  const result = config.prevResult
    ? { ...config.prevResult, cniVersion: config.cniVersion }
    : { cniVersion: config.cniVersion, interfaces: [], ips: [], dns: {} };
  return `${JSON.stringify(result)}\n`;
}

interface PodRef {
  namespace: string;
  name: string;
}

function podOf(env: CniEnv): PodRef | undefined {
  const namespace = env.args.get("K8S_POD_NAMESPACE");
  const name = env.args.get("K8S_POD_NAME");
  return namespace && name ? { namespace, name } : undefined;
}

/** Why this pod passes through without the agent, or undefined when the agent must hear of it. */
export function skipReason(pod: PodRef | undefined, config: PluginConfig): string | undefined {
  if (!pod) return "no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS (not a Kubernetes pod)";
  if (config.excludeNamespaces.includes(pod.namespace))
    return `pod ${pod.namespace}/${pod.name}: namespace excluded`;
  const full = `${pod.namespace}/${pod.name}`;
  const match = config.excludePods.find((p) =>
    p.endsWith("*") ? full.startsWith(p.slice(0, -1)) : full === p,
  );
  return match ? `pod ${full}: excluded by "${match}"` : undefined;
}

/**
 * The pod's addresses, without prefix length: every IP of prevResult except those on a host-side
 * interface (an `interface` index pointing at an entry without `sandbox`).
 */
export function podIps(prev: Record<string, unknown>): string[] {
  const ips = prev.ips ?? [];
  const interfaces = Array.isArray(prev.interfaces) ? prev.interfaces : [];
  if (!Array.isArray(ips)) throw new CniError(CniCode.INVALID_CONFIG, "prevResult.ips must be an array");
  const out: string[] = [];
  ips.forEach((entry: unknown, i) => {
    const address = isObject(entry) ? entry.address : undefined;
    const ip = typeof address === "string" ? address.split("/")[0]! : "";
    if (!isIP(ip)) {
      throw new CniError(
        CniCode.INVALID_CONFIG,
        `prevResult.ips[${i}].address is not an IP address`,
        String(address),
      );
    }
    const idx = isObject(entry) ? entry.interface : undefined;
    const iface = typeof idx === "number" ? interfaces[idx] : undefined;
    if (isObject(iface) && !iface.sandbox) return;
    if (!out.includes(ip)) out.push(ip);
  });
  return out;
}

function requireVersion(config: PluginConfig, command: string, min: string): void {
  if (!versionAtLeast(config.cniVersion, min)) {
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      `config version does not allow ${command}`,
      `${command} needs cniVersion ${min} or later; config is ${config.cniVersion}`,
    );
  }
}

function agentFailure(err: unknown, what: string): CniError {
  if (!isAgentCallError(err)) {
    return new CniError(CniCode.INTERNAL, `calling the node agent: ${(err as Error).message}`, what);
  }
  if (err.kind !== "protocol") {
    return new CniError(
      CniCode.TRY_AGAIN_LATER,
      `${err.message} (${what}); is ambient-cni-agent running on this node?`,
      err.errno ? `${err.kind}: ${err.errno}` : err.kind,
    );
  }
  return new CniError(CniCode.AGENT_PROTOCOL, err.message, what);
}
