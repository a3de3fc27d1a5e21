// The benchmark's app, the same for every path: reviews-v1 and reviews-v2, two node:http servers in
// one process on the pods' addresses, each answering any request with 200 and a 1 KiB body plus
// `x-backend: v1|v2` (the load counts it to check the routing). `GET /__stats` answers, on either,
// the requests and TCP connections each server has seen (a connection counts once it carries a
// request other than /__stats). Prints "ready" once both listen.
// Usage (run.mjs starts it): node bench/waypoint/backend.mjs

import { createServer } from "node:http";
import { V1, V2 } from "./config.mjs";

const BODY = Buffer.alloc(1024, "r");
const stats = { v1: { requests: 0, connections: 0 }, v2: { requests: 0, connections: 0 } };
const servers = [];
const counted = new WeakSet();

for (const [name, addr] of [
  ["v1", V1],
  ["v2", V2],
]) {
  const server = createServer((req, res) => {
    if (req.url === "/__stats") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(stats));
      return;
    }
    stats[name].requests++;
    if (!counted.has(req.socket)) {
      counted.add(req.socket);
      stats[name].connections++;
    }
    // Drain any body before answering so keep-alive stays usable.
    req.resume();
    res.writeHead(200, {
      "content-type": "text/plain",
      "content-length": String(BODY.length),
      "x-backend": name,
    });
    res.end(BODY);
  });
  // Upstream pools (nginx, haproxy, the core proxy's agent) keep idle connections between phases;
  // Node's 5 s default would close them under the proxies mid-run.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.on("connection", (socket) => socket.setNoDelay(true));
  servers.push(server);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: addr.host, port: addr.port }, resolve);
  });
}
process.stdout.write("ready\n");

function stop() {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// Started with an IPC channel: if run.mjs dies without stopping us, we go too.
process.on("disconnect", stop);
