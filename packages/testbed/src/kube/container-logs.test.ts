import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pod } from "@ambient/kube";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { containerLogFile, readContainerLog } from "./container-logs.js";

const pod: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "ns" },
  spec: { containers: [{ name: "app" }] },
} as Pod;
const options = { follow: true, previous: false, timestamps: false };

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ambient-container-logs-"));
  file = containerLogFile(dir, pod, "app");
  await writeFile(file, "one\ntwo\n");
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Reads the stream chunk by chunk; `next()` gives the text so far once it contains `want`. */
function reader(stream: AsyncIterable<Buffer>) {
  const it = stream[Symbol.asyncIterator]();
  let text = "";
  return {
    async until(want: string): Promise<string> {
      while (!text.includes(want)) {
        const r = await it.next();
        if (r.done) throw new Error(`stream ended before "${want}": ${text}`);
        text += r.value.toString();
      }
      return text;
    },
    async rest(): Promise<string> {
      for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.toString();
      return text;
    },
  };
}

describe("readContainerLog with follow", () => {
  it("sends the tail, then each appended line, and ends when the client goes away", async () => {
    const gone = new AbortController();
    const stream = await readContainerLog(dir, pod, { ...options, tailLines: 1 }, gone.signal);
    expect(typeof stream).not.toBe("string");
    const r = reader(stream as AsyncIterable<Buffer>);
    expect(await r.until("two")).toBe("two\n");
    await appendFile(file, "three\n");
    expect(await r.until("three")).toBe("two\nthree\n");
    gone.abort();
    expect(await r.rest()).toBe("two\nthree\n");
  });

  it("ends when the container stops, with what it wrote last", async () => {
    const stopped = new AbortController();
    const r = reader((await readContainerLog(dir, pod, options, stopped.signal)) as AsyncIterable<Buffer>);
    await r.until("two");
    await appendFile(file, "last words\n");
    stopped.abort();
    expect(await r.rest()).toBe("one\ntwo\nlast words\n");
  });

  it("answers at once for a container that is not running, and still refuses what it cannot honour", async () => {
    expect(await readContainerLog(dir, pod, options)).toBe("one\ntwo\n");
    await expect(readContainerLog(dir, pod, { ...options, timestamps: true })).rejects.toThrow(
      "does not support the log option timestamps",
    );
  });
});
