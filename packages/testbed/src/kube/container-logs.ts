// The kubelet's container logs: every container's stdout/stderr goes to one file per container
// (the netns runtime's processes write there; the loopback runtime points the in-process
// component's logger there), and `pods/<name>/log` is answered from that file, as the kubelet
// serves /containerLogs. With follow=true the answer streams what the container writes next, until
// the client goes away or the container stops, as the kubelet's follow does. Options this stand-in
// cannot honour are refused by name.

import { createWriteStream, type WriteStream, watch } from "node:fs";
import { mkdir, open, readFile } from "node:fs/promises";
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

/**
 * The log text `kubectl logs` asked for, or an error naming what cannot be answered. Following, the
 * text is a stream that ends when `end` aborts (the client went away or the container stopped).
 */
export async function readContainerLog(
  logsDir: string,
  pod: Pod,
  o: LogOptions,
  end?: AbortSignal,
): Promise<string | AsyncIterable<Buffer>> {
  const container = o.container ?? pod.spec?.containers?.[0]?.name;
  const name = pod.metadata.name;
  if (!container) throw new Error(`pod ${name} has no containers`);
  // The files are appended across restarts, so there is no separate previous instance to show.
  if (o.previous) throw new Error(`previous terminated container "${container}" in pod "${name}" not found`);
  for (const [option, set] of [
    ["timestamps", o.timestamps],
    ["sinceSeconds", o.sinceSeconds !== undefined],
  ] as const) {
    if (set) throw new Error(`the kubelet stand-in does not support the log option ${option}`);
  }
  const file = containerLogFile(logsDir, pod, container);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    throw new Error(`container "${container}" in pod "${name}" is waiting to start: ContainerCreating`);
  }
  const text = tail(bytes.toString("utf8"), o.tailLines);
  // A container that is not running has nothing more to say: follow ends at once, as kubectl's does.
  if (!o.follow || !end || end.aborted) return text;
  return followFile(file, bytes.length, text, end);
}

function tail(text: string, lines: number | undefined): string {
  if (lines === undefined) return text;
  if (lines === 0) return "";
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  const last = all.slice(-lines);
  return last.length ? `${last.join("\n")}\n` : "";
}

/** `first`, then every byte appended to `file` after `offset`, until `end` aborts (then what is left). */
async function* followFile(
  file: string,
  offset: number,
  first: string,
  end: AbortSignal,
): AsyncGenerator<Buffer> {
  if (first) yield Buffer.from(first);
  let wake = () => {};
  // inotify, not polling: an appended line is sent as soon as it is written.
  const watcher = watch(file, () => wake());
  watcher.on("error", () => wake());
  const onEnd = () => wake();
  end.addEventListener("abort", onEnd);
  try {
    for (;;) {
      // Armed before reading, so a write that lands during the read is not missed.
      const changed = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const chunk = await readFrom(file, offset);
      offset += chunk.length;
      if (chunk.length > 0) yield chunk;
      if (end.aborted) return;
      await changed;
    }
  } finally {
    watcher.close();
    end.removeEventListener("abort", onEnd);
  }
}

async function readFrom(file: string, offset: number): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
