import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ReplayBody } from "./body.js";

function sink(): Writable & { text: () => string; ended: boolean } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  }) as Writable & { text: () => string; ended: boolean };
  w.ended = false;
  w.on("finish", () => {
    w.ended = true;
  });
  w.text = () => Buffer.concat(chunks).toString();
  return w;
}

const tick = () => new Promise((r) => setImmediate(r));

describe("ReplayBody", () => {
  it("reads nothing until an attempt takes it, then streams as it arrives", async () => {
    const source = new PassThrough();
    const body = new ReplayBody(source);
    source.write("ab");
    await tick();
    expect(body.bytes).toBe(0);
    const first = sink();
    body.attach(first);
    await tick();
    expect(first.text()).toBe("ab");
    source.write("cd");
    await tick();
    expect(first.text()).toBe("abcd");
    expect(first.ended).toBe(false);
  });

  it("gives a later attempt the whole body again, then the rest as it comes", async () => {
    const source = new PassThrough();
    const body = new ReplayBody(source);
    const first = sink();
    body.attach(first);
    source.write("ab");
    await tick();
    body.detach(first);
    const second = sink();
    body.attach(second);
    source.end("cd");
    await tick();
    expect(second.text()).toBe("abcd");
    expect(second.ended).toBe(true);
    expect(body.whole?.toString()).toBe("abcd");
  });

  it("past the limit the body streams through once and is no longer replayable", async () => {
    const source = new PassThrough();
    const body = new ReplayBody(source, 4);
    const first = sink();
    body.attach(first);
    source.end("abcdef");
    await tick();
    expect(first.text()).toBe("abcdef");
    expect(body.replayable).toBe(false);
    expect(body.whole).toBeUndefined();
    expect(() => body.attach(sink())).toThrow(/larger than the retry buffer/);
  });

  it("reports a client that goes away before the end", async () => {
    const source = new PassThrough();
    const body = new ReplayBody(source);
    const failed = new Promise<Error>((r) => body.once("failed", r));
    body.attach(sink());
    source.write("ab");
    source.destroy();
    expect((await failed).message).toMatch(/closed the request before its end/);
  });
});
