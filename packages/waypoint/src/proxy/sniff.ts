// Protocol detection on a tunnel the waypoint terminated: bytes are read until they settle the
// question — the HTTP/2 prior-knowledge preface, an HTTP/1.x request line, or something else —
// bounded in bytes and in time, so a request split over several TCP segments is still HTTP and a
// server-first protocol (the client waits for a greeting) still gets through as opaque TCP.

import { METHODS } from "node:http";
import type { Duplex } from "node:stream";

export type DetectedProtocol = "h2" | "http1" | "tcp";

/** RFC 9113 §3.4: what a client speaking HTTP/2 with prior knowledge sends first. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Node's own parser accepts exactly these methods; anything else could not be served as HTTP/1
 * anyway. Checking the method first lets "GE" wait while "EHLO", "SSH-2.0" or a TLS record are
 * decided at once.
 */
const METHOD_NAMES = new Set(METHODS);
const LONGEST_METHOD = Math.max(...METHODS.map((m) => m.length));

/**
 * node:http's default --max-http-header-size. A request line still unfinished past this many
 * bytes is handed to node:http, which answers it (414/431) — Envoy's http_inspector gives up at
 * 8 KiB and proxies it as TCP, which here would take it past the L7 policy.
 */
export const SNIFF_MAX_BYTES = 16 * 1024;

/**
 * How long an undecided tunnel waits for more bytes before it is treated as opaque TCP. A
 * server-first protocol (MySQL, SMTP: the client sends nothing until the server greets it) pays
 * this once per connection. Envoy's listener_filters_timeout is 15 s and Linkerd's detection 10 s,
 * long enough to look like an outage to those protocols; Istio's sidecars used 100 ms until 1.10
 * and read slow HTTP clients as TCP. 1 s is far above the gap between the writes of one request
 * line and short enough for a server-first handshake to go through.
 */
export const SNIFF_TIMEOUT_MS = 1_000;

export type Verdict = DetectedProtocol | "more";

/**
 * What the bytes so far say. "more": still a prefix of the h2 preface or of an HTTP/1.x request
 * line (method, SP, target, SP, "HTTP/1.0|1"). The version is required so a Redis inline command
 * ("GET key\r\n") or anything else that merely starts with a method name stays opaque TCP.
 */
export function classify(head: Buffer, maxBytes = SNIFF_MAX_BYTES): Verdict {
  if (head.length === 0) return "more";
  const preface = head.subarray(0, H2_PREFACE.length);
  if (H2_PREFACE.subarray(0, preface.length).equals(preface))
    return preface.length === H2_PREFACE.length ? "h2" : "more";
  const line = http1RequestLine(head.subarray(0, maxBytes).toString("latin1"));
  if (line === "more" && head.length >= maxBytes) return "http1";
  return line;
}

function http1RequestLine(text: string): Verdict {
  const sp1 = text.indexOf(" ");
  if (sp1 < 0) {
    if (text.length > LONGEST_METHOD) return "tcp";
    return METHODS.some((m) => m.startsWith(text)) ? "more" : "tcp";
  }
  if (!METHOD_NAMES.has(text.slice(0, sp1))) return "tcp";
  const sp2 = text.indexOf(" ", sp1 + 1);
  const target = text.slice(sp1 + 1, sp2 < 0 ? undefined : sp2);
  // RFC 9112 §3.2: the request-target is visible ASCII; a CR/LF here is HTTP/0.9 or not HTTP.
  if (!/^[\x21-\x7e]*$/.test(target)) return "tcp";
  if (sp2 < 0) return "more";
  if (target.length === 0) return "tcp";
  const version = text.slice(sp2 + 1, sp2 + 1 + "HTTP/1.1".length);
  if (version.length < "HTTP/1.1".length) return "HTTP/1.".startsWith(version.slice(0, 7)) ? "more" : "tcp";
  return version === "HTTP/1.1" || version === "HTTP/1.0" ? "http1" : "tcp";
}

export interface SniffResult {
  protocol: DetectedProtocol;
  /** Every byte read while deciding: the caller puts it back or forwards it first. */
  head: Buffer;
  /** Why it is TCP, for the debug log: "bytes", "timeout" or "end" (the client finished first). */
  because: "bytes" | "timeout" | "end";
}

export interface SniffOptions {
  /** Default SNIFF_TIMEOUT_MS; 0: no time bound. */
  timeoutMs?: number;
  maxBytes?: number;
}

/**
 * Reads `stream` until its protocol is decided. Resolves undefined when the stream closes or fails
 * first (nothing to serve). On return the stream is paused and has not emitted 'end' unless
 * `because` is "end"; the bytes read are in `head`, not in the stream.
 */
export function sniff(stream: Duplex, opts: SniffOptions = {}): Promise<SniffResult | undefined> {
  const maxBytes = opts.maxBytes ?? SNIFF_MAX_BYTES;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: SniffResult | undefined) => {
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onClose);
      stream.off("error", onClose);
      stream.pause();
      resolve(result);
    };
    const head = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      const verdict = classify(head(), maxBytes);
      if (verdict !== "more") done({ protocol: verdict, head: head(), because: "bytes" });
    };
    const onEnd = () => done({ protocol: "tcp", head: head(), because: "end" });
    const onClose = () => done(undefined);
    // 0 waits for bytes as long as it takes (Istio's "0s to disable").
    const timeoutMs = opts.timeoutMs ?? SNIFF_TIMEOUT_MS;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => done({ protocol: "tcp", head: head(), because: "timeout" }), timeoutMs)
        : undefined;
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onClose);
    stream.once("error", onClose);
  });
}
