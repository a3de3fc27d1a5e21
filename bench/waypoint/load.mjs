// The load generator, the same on every path: N keep-alive HTTP/1.1 connections, each a loop of
// `GET /` one at a time (the next request leaves when the previous answer is complete), every other
// request carrying `end-user: jason`. A warm-up, then a measured window; per-request latency goes
// into an HDR histogram. Plain TCP to the target, or a SOCKS5 CONNECT through the client pod's
// ztunnel first (one tunnel per load connection, reused for all its requests).
// Prints `{"event":"measuring"}` when the window opens and one JSON result line at the end.
// Usage (run.mjs starts it): node bench/waypoint/load.mjs '<json: target, socks?, localAddress,
//   connections, warmupMs, durationMs, hostHeader, requestTimeoutMs>'

import { connect } from "node:net";
import { createHistogram } from "node:perf_hooks";
import { socksConnect } from "@ambient/testbed";

const cfg = JSON.parse(process.argv[2]);
const head = `GET / HTTP/1.1\r\nHost: ${cfg.hostHeader}\r\nUser-Agent: ambient-bench\r\nAccept: */*\r\n`;
const REQUESTS = [Buffer.from(`${head}end-user: jason\r\n\r\n`), Buffer.from(`${head}\r\n`)];
const HEADER_END = Buffer.from("\r\n\r\n");
const CHUNKED_END = Buffer.from("\r\n0\r\n\r\n");

const histogram = createHistogram({ lowest: 1, highest: 60e9, figures: 3 });
const result = {
  requests: 0,
  /** Which server answered the 200s (x-backend); "other" = a 200 without it. */
  backends: { v1: 0, v2: 0, other: 0 },
  /** `end-user: jason` answered (200) by anything but v2. */
  jasonNotV2: 0,
  errors: { connect: 0, status: {}, closed: 0, timeout: 0, reset: 0, other: 0 },
  connectionsOpened: 0,
  /** The first few non-200 answers, head and the start of the body, as sent. */
  errorSamples: [],
  /** Connections the server closed with `Connection: close` after an answer. */
  serverClosed: 0,
};

const t0 = process.hrtime.bigint();
const warmEnd = t0 + BigInt(cfg.warmupMs) * 1_000_000n;
const end = warmEnd + BigInt(cfg.durationMs) * 1_000_000n;
let cpuAtWarmEnd;
setTimeout(() => {
  cpuAtWarmEnd = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ event: "measuring" })}\n`);
}, cfg.warmupMs).unref();

/** One connection: sends a request, resolves with the parsed answer once its body is complete. */
class Connection {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.pending = undefined;
    this.failure = undefined;
    socket.setNoDelay(true);
    socket.on("data", (chunk) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.parse();
    });
    socket.on("error", (err) => this.fail(err.code === "ECONNRESET" ? "reset" : "other", err));
    // A SOCKS5 socket allows half-open, so a server's close shows as "end" only.
    socket.on("end", () => this.fail("closed"));
    socket.on("close", () => this.fail("closed"));
    socket.resume();
  }

  request(bytes) {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail("timeout"), cfg.requestTimeoutMs);
      this.pending = { resolve, reject, timer };
      this.socket.write(bytes);
    });
  }

  parse() {
    const p = this.pending;
    if (!p) return;
    const headerEnd = this.buf.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const headText = this.buf.subarray(0, headerEnd).toString("latin1");
    const status = Number(headText.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
    let total;
    if (length) {
      total = headerEnd + 4 + Number(length[1]);
      if (this.buf.length < total) return;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(headText)) {
      const at = this.buf.indexOf(CHUNKED_END, headerEnd);
      if (at < 0) return;
      total = at + CHUNKED_END.length;
    } else {
      total = headerEnd + 4; // no body
    }
    if (status !== 200 && result.errorSamples.length < 3)
      result.errorSamples.push(this.buf.subarray(0, Math.min(total, headerEnd + 4 + 300)).toString("latin1"));
    const backend = /\r\nx-backend:\s*(v\d)/i.exec(headText)?.[1];
    const close = /\r\nconnection:\s*close/i.test(headText);
    this.buf = this.buf.subarray(total);
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve({ status, backend, close });
  }

  fail(kind, err) {
    if (this.failure) return;
    this.failure = Object.assign(new Error(err?.message ?? kind), { kind });
    this.socket.destroy();
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
  }

  close() {
    this.failure ??= Object.assign(new Error("closed by us"), { kind: "ours" });
    this.socket.destroy();
  }
}

async function open() {
  const local = { localAddress: cfg.localAddress };
  if (cfg.socks) {
    const s = await socksConnect(cfg.socks, cfg.target, local);
    // socksConnect rejects late if the proxy closes after the reply; nothing to do by then.
    s.on("error", () => {});
    return new Connection(s);
  }
  const s = connect({ host: cfg.target.host, port: cfg.target.port, ...local });
  await new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("error", reject);
  });
  return new Connection(s);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function worker(index) {
  // Alternate per connection, so the header mix is half and half whatever the request count.
  let n = index;
  while (process.hrtime.bigint() < end) {
    let conn;
    try {
      conn = await open();
      result.connectionsOpened++;
    } catch {
      result.errors.connect++;
      await sleep(50); // bounded by `end`: a refused path does not spin
      continue;
    }
    try {
      for (;;) {
        const started = process.hrtime.bigint();
        if (started >= end) break;
        const jason = (n++ & 1) === 0;
        const answer = await conn.request(REQUESTS[jason ? 0 : 1]);
        const done = process.hrtime.bigint();
        if (started >= warmEnd && done <= end) {
          result.requests++;
          histogram.record(Number(done - started));
          if (answer.status !== 200) {
            result.errors.status[answer.status] = (result.errors.status[answer.status] ?? 0) + 1;
          } else {
            if (answer.backend === "v1" || answer.backend === "v2") result.backends[answer.backend]++;
            else result.backends.other++;
            if (jason && answer.backend !== "v2") result.jasonNotV2++;
          }
        }
        if (answer.close) {
          result.serverClosed++;
          break;
        }
      }
    } catch (err) {
      // Counted in and out of the window alike: an error is never a figure to leave out.
      const kind = err.kind ?? "other";
      result.errors[kind in result.errors ? kind : "other"]++;
    } finally {
      conn.close();
    }
  }
}

await Promise.all(Array.from({ length: cfg.connections }, (_, i) => worker(i)));
const cpu = process.cpuUsage(cpuAtWarmEnd);
const ms = (ns) => ns / 1e6;
Object.assign(result, {
  seconds: cfg.durationMs / 1000,
  rps: result.requests / (cfg.durationMs / 1000),
  p50ms: ms(histogram.percentile(50)),
  p90ms: ms(histogram.percentile(90)),
  p99ms: ms(histogram.percentile(99)),
  maxMs: ms(histogram.max),
  meanMs: ms(histogram.mean),
  /** The load generator's own CPU over the window, in % of one core (100 = saturated). */
  clientCpuPct: ((cpu.user + cpu.system) / 1000 / cfg.durationMs) * 100,
});
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
