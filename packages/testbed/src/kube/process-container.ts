// A container as a real process: the mesh's binaries (or the echo app) with the pod's args and
// env, in the pod's netns.
// Ready once the program logs its "ready" line; stopped with SIGTERM, then SIGKILL.

import type { Pod } from "@ambient/kube";
import { READY_MESSAGE } from "@ambient/ztunnel";
import { nodeArgv } from "../binaries.js";
import { ECHO_READY_MESSAGE, echoCommand } from "../netns/echo-app.js";
import { BINARIES } from "../netns/mesh.js";
import { spawnInNetns } from "../netns/spawn.js";
import {
  agentPathArgs,
  type ContainerSpec,
  type ImageKind,
  proxyFiles,
  type RunningContainer,
} from "./runtime.js";

/** The line each program logs once it serves (ztunnel's is exported by the package). */
const READY_LINES: Record<ImageKind, RegExp | string> = {
  app: ECHO_READY_MESSAGE,
  ztunnel: READY_MESSAGE,
  cni: /node agent ready/,
  waypoint: /waypoint started/,
  controlplane: /control plane serving/,
};
// A start that has not logged its ready line by then fails, and the kubelet starts it again.
const START_TIMEOUT_MS = 60_000;

/**
 * Runs `c` as a process in the netns at `netnsPath`; a pod's own netns (not the node's) with its
 * hosts file, which names the Services (kube-proxy.ts), as cluster DNS would answer the pod.
 */
export async function startProcessContainer(
  netnsPath: string,
  pod: Pod,
  c: ContainerSpec,
): Promise<RunningContainer> {
  const { cmd, args, env } = commandFor(pod, c);
  // Only what the pod declares (and PATH): a developer's shell (KUBECONFIG, NODE_NAME) stays out.
  const opts = {
    logFile: c.logFile,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    withNetnsFiles: !pod.spec?.hostNetwork,
  };
  const proc = await spawnInNetns(netnsPath, cmd, args, opts);
  try {
    await proc.waitForLog(READY_LINES[c.image], START_TIMEOUT_MS);
  } catch (err) {
    await proc.stop();
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    throw new Error(`container ${c.name} of ${key} did not start: ${(err as Error).message}`, { cause: err });
  }
  return {
    ready: () => proc.running,
    exited: proc.exited,
    stop: async (graceMs?: number) => {
      await proc.stop(graceMs);
    },
  };
}

function commandFor(
  pod: Pod,
  c: ContainerSpec,
): { cmd: string; args: string[]; env: Record<string, string> } {
  const node = process.execPath;
  switch (c.image) {
    case "app":
      return {
        ...echoCommand({
          pod: pod.metadata.name,
          namespace: pod.metadata.namespace ?? "default",
          serviceAccount: pod.spec?.serviceAccountName ?? "default",
          node: pod.spec?.nodeName ?? "",
          ports: c.ports,
        }),
        env: {},
      };
    case "ztunnel":
      return {
        cmd: node,
        args: [...nodeArgv(BINARIES.ztunnel), ...c.args],
        env: { ...proxyFiles(c), ...c.env },
      };
    case "waypoint":
      return {
        cmd: node,
        args: [...nodeArgv(BINARIES.waypoint), ...c.args],
        env: { ...proxyFiles(c), ...c.env },
      };
    // In-cluster configuration, given as the kubeconfig the pod's volumes hold (see pod-volumes.ts).
    case "cni":
      return {
        cmd: node,
        args: [...nodeArgv(BINARIES.agent), ...c.args, ...agentPathArgs(c), "--kubeconfig", c.kubeconfig],
        env: c.env,
      };
    case "controlplane":
      return {
        cmd: node,
        args: [...nodeArgv(BINARIES.controlplane), ...c.args, "--kubeconfig", c.kubeconfig],
        env: c.env,
      };
  }
}
