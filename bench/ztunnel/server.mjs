#!/usr/bin/env node
// The app behind every path of the ztunnel benchmark: one TCP listener (the server pod's IP:9000)
// whose first byte on a connection picks what it does, so the three tests share one server:
//   'E'            echo every following byte (latency, held connections)
//   'D' + u64 BE n discard the next n bytes, then answer 'K' (throughput, timed at the client)
//   'C'            answer 'c' and close (connection rate)
// Usage: node bench/ztunnel/server.mjs HOST PORT   (prints "listening" when bound)

import { createServer } from "node:net";

const [host = "127.30.2.10", port = "9000"] = process.argv.slice(2);

const server = createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => {});
  let mode = "";
  let header = Buffer.alloc(0);
  let remaining = 0n;
  socket.on("data", function onData(chunk) {
    if (mode === "E") {
      socket.write(chunk);
      return;
    }
    if (mode === "D") {
      remaining -= BigInt(chunk.length);
      if (remaining <= 0n) {
        mode = "done";
        socket.write("K");
      }
      return;
    }
    if (mode === "done") return;
    header = header.length ? Buffer.concat([header, chunk]) : chunk;
    const m = String.fromCharCode(header[0]);
    if (m === "E") {
      mode = "E";
      if (header.length > 1) socket.write(header.subarray(1));
    } else if (m === "C") {
      mode = "done";
      socket.end("c");
    } else if (m === "D") {
      if (header.length < 9) return;
      mode = "D";
      remaining = header.readBigUInt64BE(1);
      const rest = header.subarray(9);
      if (rest.length) onData(rest);
      else if (remaining === 0n) onData(Buffer.alloc(0));
    } else {
      socket.destroy();
    }
    header = Buffer.alloc(0);
  });
});
server.maxConnections = 10_000;
server.listen({ host, port: Number(port), backlog: 4096 }, () => process.stdout.write("listening\n"));
// Held connections would keep close() waiting: the orchestrator stops clients first, then us.
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
