import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { classify, sniff } from "./sniff.js";

const b = (s: string) => Buffer.from(s, "latin1");

describe("classify", () => {
  it("waits on every prefix of an HTTP/1.1 request line, and decides at its version", () => {
    const line = "GET /a?b=c HTTP/1.1";
    for (let i = 1; i < line.length; i++)
      expect(classify(b(line.slice(0, i))), line.slice(0, i)).toBe("more");
    expect(classify(b(line))).toBe("http1");
    expect(classify(b("DELETE * HTTP/1.0\r\n"))).toBe("http1");
  });

  it("waits on every prefix of the HTTP/2 preface, and decides on the whole of it", () => {
    const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for (let i = 1; i < preface.length; i++) expect(classify(b(preface.slice(0, i)))).toBe("more");
    expect(classify(b(preface))).toBe("h2");
  });

  it("decides TCP as soon as the bytes cannot become either", () => {
    expect(classify(b("EHLO mail.example\r\n"))).toBe("tcp");
    expect(classify(b("SSH-2.0-OpenSSH\r\n"))).toBe("tcp");
    expect(classify(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]))).toBe("tcp");
    expect(classify(b("get / HTTP/1.1"))).toBe("tcp");
    expect(classify(b("FETCH / HTTP/1.1"))).toBe("tcp");
    // Redis inline commands start like a request line but never carry a version.
    expect(classify(b("GET key\r\n"))).toBe("tcp");
    expect(classify(b("GET / HTTP/2.0\r\n"))).toBe("tcp");
    expect(classify(b("GET  / HTTP/1.1"))).toBe("tcp");
    expect(classify(b("PRI * HTTP/2.0\r\n\r\nXX"))).toBe("tcp");
  });

  it("hands a request line longer than the byte bound to HTTP/1, which refuses it itself", () => {
    expect(classify(b(`GET /${"a".repeat(100)}`), 64)).toBe("http1");
    expect(classify(b(`GET /${"a".repeat(10)}`), 64)).toBe("more");
  });
});

describe("sniff", () => {
  it("accumulates a request split into several writes and returns every byte read", async () => {
    const s = new PassThrough();
    const result = sniff(s, { timeoutMs: 60_000 });
    for (const piece of ["GE", "T / HT", "TP/1.1\r\nhost: x\r\n\r\n"]) {
      s.write(piece);
      await new Promise((r) => setImmediate(r));
    }
    expect(await result).toEqual({
      protocol: "http1",
      head: b("GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
      because: "bytes",
    });
    expect(s.isPaused()).toBe(true);
  });

  it("falls back to TCP when the client stops short and waits (server-first protocols send nothing)", async () => {
    const silent = new PassThrough();
    expect(await sniff(silent, { timeoutMs: 20 })).toEqual({
      protocol: "tcp",
      head: Buffer.alloc(0),
      because: "timeout",
    });
    const stalled = new PassThrough();
    stalled.write("GE");
    expect(await sniff(stalled, { timeoutMs: 20 })).toEqual({
      protocol: "tcp",
      head: b("GE"),
      because: "timeout",
    });
  });

  it("decides TCP when the client ends its side before the bytes decide", async () => {
    const s = new PassThrough();
    const result = sniff(s, { timeoutMs: 60_000 });
    s.end("GE");
    expect(await result).toEqual({ protocol: "tcp", head: b("GE"), because: "end" });
  });

  it("resolves undefined when the stream goes away first", async () => {
    const s = new PassThrough();
    const result = sniff(s, { timeoutMs: 60_000 });
    s.destroy();
    expect(await result).toBeUndefined();
  });
});
