#!/usr/bin/env node
// Load generator of the ztunnel benchmark: one test through one path, in its own process so it
// never shares an event loop with a proxy. Talks the tiny protocol of server.mjs and prints one
// JSON line with the result (the `hold` test prints a line when its connections are up, keeps them
// until its stdin ends or says "close", then prints the final line).
//
//   node bench/ztunnel/load.mjs --test latency|throughput|connrate|hold --connect HOST:PORT
//        [--socks-dest HOST:PORT] [--local IP] [--count 10000] [--warmup 1000] [--seconds 5]
//        [--concurrency 16] [--conns 1000]
//
// --connect is where the TCP connection goes; with --socks-dest it is a SOCKS5 proxy (the pod's
// ztunnel, 15080) asked to CONNECT to that destination, once per connection.

import { connect as tcpConnect } from "node:net";
import { socksConnect } from "@ambient/testbed";

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith("--")) args[a.slice(2)] = process.argv[++i];
}
const hostPort = (s) => {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
};
const target = hostPort(args.connect);
const socksDest = args["socks-dest"] ? hostPort(args["socks-dest"]) : undefined;
const localAddress = args.local;
const CONNECT_TIMEOUT_MS = 10_000;

/** A connected socket through the path (SOCKS5 handshake done when there is one). */
async function open() {
  let socket;
  if (socksDest) {
    socket = await withTimeout(socksConnect(target, socksDest, { localAddress }), "SOCKS5 connect");
  } else {
    socket = tcpConnect({ ...target, localAddress, allowHalfOpen: true });
    await withTimeout(
      new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("error", reject);
      }),
      "connect",
      () => socket.destroy(),
    );
    socket.removeAllListeners("error");
  }
  socket.setNoDelay(true);
  return socket;
}

function withTimeout(promise, what, onTimeout) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        onTimeout?.();
        reject(Object.assign(new Error(`${what} timed out`), { code: "BENCH_TIMEOUT" }));
      }, CONNECT_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves after `n` more bytes arrived (or rejects when the socket ends/fails first). */
function reader(socket) {
  let have = 0;
  let want = 0;
  let waiter;
  let failure;
  const settle = () => {
    if (!waiter) return;
    if (failure) {
      const w = waiter;
      waiter = undefined;
      w.reject(failure);
    } else if (have >= want) {
      have -= want;
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  };
  socket.on("data", (c) => {
    have += c.length;
    settle();
  });
  const fail = (err) => {
    failure ??= err ?? Object.assign(new Error("connection closed early"), { code: "BENCH_CLOSED" });
    settle();
  };
  socket.on("error", fail);
  socket.on("close", () => fail());
  // socksConnect hands the socket over paused (bytes behind the SOCKS reply wait for listeners).
  socket.resume();
  return (n) =>
    new Promise((resolve, reject) => {
      want = n;
      waiter = { resolve, reject };
      settle();
    });
}

/** Destroys `socket` when `progress()` has not changed for STALL_MS: a stuck path fails, never hangs. */
const STALL_MS = 10_000;
function watchdog(socket, progress) {
  let last = -1;
  const timer = setInterval(() => {
    const now = progress();
    if (now === last)
      socket.destroy(Object.assign(new Error(`no progress for ${STALL_MS} ms`), { code: "BENCH_STALLED" }));
    last = now;
  }, STALL_MS);
  timer.unref();
  socket.once("close", () => clearInterval(timer));
  return timer;
}

const errors = {};
const countError = (err) => {
  const code = err?.code ?? err?.message ?? String(err);
  errors[code] = (errors[code] ?? 0) + 1;
};

// ---- (b) latency: sequential 1 KB round trips over one connection ----
async function latency() {
  const count = Number(args.count ?? 10_000);
  const warmup = Number(args.warmup ?? 1_000);
  const size = Number(args.size ?? 1024);
  const socket = await open();
  const read = reader(socket);
  const payload = Buffer.alloc(size, 0x61);
  socket.write("E");
  const samples = new Float64Array(count);
  let i = 0;
  watchdog(socket, () => i);
  for (; i < warmup + count; i++) {
    const t0 = process.hrtime.bigint();
    socket.write(payload);
    await read(size);
    if (i >= warmup) samples[i - warmup] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  socket.destroy();
  samples.sort();
  const pct = (p) => samples[Math.min(count - 1, Math.floor((p / 100) * count))];
  const mean = samples.reduce((a, b) => a + b, 0) / count;
  return {
    roundTrips: count,
    warmup,
    bytes: size,
    p50us: pct(50),
    p90us: pct(90),
    p99us: pct(99),
    meanUs: mean,
    maxUs: samples[count - 1],
  };
}

// ---- (a) throughput: n bytes through one connection, timed until the server has them all ----
async function sendBytes(n) {
  const socket = await open();
  const read = reader(socket);
  const chunk = Buffer.alloc(256 * 1024, 0x62);
  const header = Buffer.alloc(9);
  header.write("D", 0);
  header.writeBigUInt64BE(BigInt(n), 1);
  const t0 = process.hrtime.bigint();
  const acked = read(1);
  socket.write(header);
  let sent = 0;
  let acks = 0;
  acked.then(
    () => acks++,
    () => {},
  );
  watchdog(socket, () => sent + acks);
  let wake;
  socket.on("drain", () => wake?.());
  socket.once("close", () => wake?.());
  while (sent < n) {
    if (socket.destroyed) throw Object.assign(new Error("closed while sending"), { code: "BENCH_CLOSED" });
    const len = Math.min(chunk.length, n - sent);
    sent += len;
    if (!socket.write(len === chunk.length ? chunk : chunk.subarray(0, len))) {
      await new Promise((resolve) => {
        wake = resolve;
      });
    }
  }
  await acked;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  socket.destroy();
  return { bytes: n, seconds, mbPerS: n / seconds / 1e6 };
}

async function throughput() {
  const seconds = Number(args.seconds ?? 5);
  // The first pass warms the path and sizes the second one to last about `seconds`.
  const probe = await sendBytes(64 * 2 ** 20);
  const chunk = 256 * 1024;
  const target = Math.round((probe.bytes / probe.seconds) * seconds);
  const n = Math.min(16 * 2 ** 30, Math.max(64 * 2 ** 20, Math.round(target / chunk) * chunk));
  const run = await sendBytes(n);
  return { probeMbPerS: probe.mbPerS, ...run };
}

// ---- (c) connection rate: open, 1 byte each way, server closes, client closes; `concurrency` loops for `seconds` ----
async function connrate() {
  const seconds = Number(args.seconds ?? 5);
  const concurrency = Number(args.concurrency ?? 16);
  const deadline = performance.now() + seconds * 1000;
  let ok = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      let socket;
      try {
        socket = await open();
        const read = reader(socket);
        const closed = new Promise((resolve) => socket.once("close", resolve));
        const ended = new Promise((resolve) => {
          socket.once("end", resolve);
          socket.once("close", resolve);
        });
        socket.write("C");
        await withTimeout(read(1), "reply", () => socket.destroy());
        // The server closes first (as an HTTP/1.0 server would), so TIME_WAIT stays on the
        // accepting sides and never uses up the client's ports on its pod address.
        await withTimeout(ended, "server close", () => socket.destroy());
        socket.end();
        await closed;
        ok++;
      } catch (err) {
        socket?.destroy();
        countError(err);
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return { connections: ok, seconds: elapsed, perS: ok / elapsed, concurrency };
}

// ---- (d) hold: open `conns` connections (1 byte echoed on each), keep them until told ----
async function hold() {
  const conns = Number(args.conns ?? 1_000);
  const concurrency = Number(args.concurrency ?? 50);
  const held = [];
  let dropped = 0;
  let next = 0;
  let stopping = false;
  const worker = async () => {
    while (next < conns) {
      next++;
      try {
        const socket = await open();
        const read = reader(socket);
        socket.write("Ex");
        await withTimeout(read(1), "echo", () => socket.destroy());
        socket.on("close", () => {
          if (!stopping) dropped++;
        });
        held.push(socket);
      } catch (err) {
        countError(err);
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const openMs = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ ready: true, held: held.length, openMs, errors })}\n`);
  await new Promise((resolve) => {
    process.stdin.on("data", (d) => {
      if (String(d).includes("close")) resolve();
    });
    process.stdin.once("end", resolve);
  });
  stopping = true;
  const stillOpen = held.filter((s) => !s.destroyed).length;
  for (const s of held) s.destroy();
  return { held: held.length, stillOpenAtEnd: stillOpen, dropped, openMs };
}

const tests = { latency, throughput, connrate, hold };
const test = tests[args.test];
if (!test) {
  process.stderr.write(`--test must be one of ${Object.keys(tests).join(", ")}\n`);
  process.exit(2);
}
try {
  const result = await test();
  process.stdout.write(`${JSON.stringify({ test: args.test, ...result, errors })}\n`);
  process.exit(0);
} catch (err) {
  countError(err);
  process.stdout.write(
    `${JSON.stringify({ test: args.test, failed: String(err?.message ?? err), errors })}\n`,
  );
  process.exit(1);
}
