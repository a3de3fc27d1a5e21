// The kubelet's container logs: every container's stdout/stderr goes to one file per container
// (the netns runtime's processes write there; the loopback runtime points the in-process
// component's logger there), and `pods/<name>/log` is answered from that file, as the kubelet
// serves /containerLogs. Options this stand-in cannot honour are refused by name.

import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Pod } from "@ambient/kube";
import type { LogOptions } from "../apiserver/pod-backends.js";

/** `<logs>/<namespace>_<pod>_<container>.log` (the kubelet's /var/log/pods keeps the same three parts). */
export function containerLogFile(logsDir: string, pod: Pod, container: string): string {
  return join(logsDir, `${pod.metadata.namespace ?? "default"}_${pod.metadata.name}_${container}.log`);
}

/** A container's log file opened for appending (an in-process container's "stdout"). */
export async function openContainerLog(file: string): Promise<WriteStream> {
  await mkdir(dirname(file), { recursive: true });
  return createWriteStream(file, { flags: "a" });
}

/** The log text `kubectl logs` asked for, or an error naming what cannot be answered. */
export async function readContainerLog(logsDir: string, pod: Pod, o: LogOptions): Promise<string> {
  const container = o.container ?? pod.spec?.containers?.[0]?.name;
  const name = pod.metadata.name;
  if (!container) throw new Error(`pod ${name} has no containers`);
  // The files are appended across restarts, so there is no separate previous instance to show.
  if (o.previous) throw new Error(`previous terminated container "${container}" in pod "${name}" not found`);
  for (const [option, set] of [
    ["follow", o.follow],
    ["timestamps", o.timestamps],
    ["sinceSeconds", o.sinceSeconds !== undefined],
  ] as const) {
    if (set) throw new Error(`the kubelet stand-in does not support the log option ${option}`);
  }
  let text: string;
  try {
    text = await readFile(containerLogFile(logsDir, pod, container), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    throw new Error(`container "${container}" in pod "${name}" is waiting to start: ContainerCreating`);
  }
  if (o.tailLines === undefined) return text;
  if (o.tailLines === 0) return "";
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const tail = lines.slice(-o.tailLines);
  return tail.length ? `${tail.join("\n")}\n` : "";
}
