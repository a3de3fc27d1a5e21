// Forwarding what the proxy does not answer to the node's resolver, over the transport the
// client used (a truncated UDP answer makes the client retry over TCP, which we then forward as
// TCP), one socket per query so that answers cannot be confused between clients.

import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect, isIP } from "node:net";
import { TcpFrames } from "./tcp-frames.js";

export interface Upstream {
  host: string;
  port: number;
}

export type Transport = "udp" | "tcp";

/** The first `nameserver` of a resolv.conf text, as glibc reads it; undefined when it has none. */
export function firstNameserver(text: string): string | undefined {
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key === "nameserver" && value && isIP(value.split("%")[0]!) !== 0) return value;
  }
  return undefined;
}

/** The node's resolver: the first nameserver of /etc/resolv.conf, port 53 (glibc's fallback: 127.0.0.1). */
export function systemUpstream(read: (path: string) => string = (p) => readFileSync(p, "utf8")): Upstream {
  let text = "";
  try {
    text = read("/etc/resolv.conf");
  } catch {
    // No resolv.conf: glibc uses the local host, so do we.
  }
  return { host: firstNameserver(text) ?? "127.0.0.1", port: 53 };
}

/** `host:port`, `[v6]:port`, or a bare address (port 53). */
export function parseUpstream(text: string): Upstream | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const [host, port] = bracketed
    ? [bracketed[1]!, bracketed[2]]
    : isIP(text) === 6
      ? [text, undefined]
      : (text.split(":") as [string, string | undefined]);
  const n = port === undefined ? 53 : Number(port);
  if (isIP(host) === 0 || !Number.isInteger(n) || n < 1 || n > 65535) return undefined;
  return { host, port: n };
}

/** Sends `query` to the upstream and resolves with its answer; rejects on timeout or error. */
export function forward(
  upstream: Upstream,
  transport: Transport,
  query: Buffer,
  timeoutMs: number,
): Promise<Buffer> {
  return transport === "udp"
    ? forwardUdp(upstream, query, timeoutMs)
    : forwardTcp(upstream, query, timeoutMs);
}

type Done = (err: Error | undefined, answer?: Buffer) => void;

/**
 * One forwarded query's lifetime, for either transport: settles once, on the answer, an error or
 * `timeoutMs`, and then closes its socket.
 */
function exchange(
  upstream: Upstream,
  timeoutMs: number,
  close: () => void,
  start: (done: Done) => void,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done: Done = (err, answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      close();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(
      () => done(new Error(`no answer from ${upstream.host}:${upstream.port} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    start(done);
  });
}

function forwardUdp(upstream: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  const socket = createSocket(isIP(upstream.host) === 6 ? "udp6" : "udp4");
  return exchange(
    upstream,
    timeoutMs,
    () => socket.close(),
    (done) => {
      socket.on("error", (err) => done(err));
      socket.on("message", (msg) => {
        if (msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) done(undefined, msg);
      });
      // Connected: the kernel drops datagrams from anyone else, and an ICMP port unreachable
      // (nothing listening upstream) fails the query at once instead of at the timeout.
      socket.connect(upstream.port, upstream.host, () => socket.send(query, (err) => err && done(err)));
    },
  );
}

function forwardTcp(upstream: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  const socket = connect({ host: upstream.host, port: upstream.port });
  const frames = new TcpFrames();
  return exchange(
    upstream,
    timeoutMs,
    () => socket.destroy(),
    (done) => {
      socket.on("error", (err) => done(err));
      socket.on("close", () => done(new Error(`${upstream.host}:${upstream.port} closed before answering`)));
      socket.on("data", (chunk) => {
        const [answer] = frames.push(chunk);
        if (answer) done(undefined, answer);
      });
      socket.write(TcpFrames.frame(query));
    },
  );
}
