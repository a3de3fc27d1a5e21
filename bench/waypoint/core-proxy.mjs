// Path "core": the waypoint's L7 decision without HBONE. A plain HTTP/1.1 listener builds each
// request the way the waypoint does (`buildRequest`, as if HBONE had named the service VIP:port),
// routes it with the waypoint's route table compiled from the same VirtualService (`compileRoutes`:
// the header match, then the 90/10 weighted pick) and forwards it with node:http and a keep-alive
// agent to the chosen subset's server. Not here: TLS, HTTP/2 CONNECT, authn/authz, the cluster
// stage (endpoints, outlier detection), retries, metrics, access log.
// Usage (run.mjs starts it): node bench/waypoint/core-proxy.mjs

import { Agent, createServer, request } from "node:http";
import { buildRequest } from "../../packages/waypoint/dist/proxy/request/build.js";
import { compileRoutes } from "../../packages/waypoint/dist/route/index.js";
import { CORE, NAMESPACE, SERVICE, V1, V2, VIRTUAL_SERVICE } from "./config.mjs";

const table = compileRoutes([VIRTUAL_SERVICE], { namespace: NAMESPACE });
// What the waypoint's describe() derives from the HBONE :authority and the peer certificate.
const destination = { host: SERVICE.host, namespace: NAMESPACE, ip: SERVICE.vip, port: SERVICE.port };
const SOURCE_PRINCIPAL = `spiffe://cluster.local/ns/${NAMESPACE}/sa/client`;
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);
// One pool per subset, sized above the load's concurrency so no request waits for a socket.
const upstreams = {
  v1: { ...V1, agent: new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 }) },
  v2: { ...V2, agent: new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 }) },
};

const server = createServer((req, res) => {
  const { l7 } = buildRequest(req, {
    sourceIp: req.socket.remoteAddress ?? "",
    sourceAddress: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    sourcePrincipal: SOURCE_PRINCIPAL,
    destination,
    labels: {},
  });
  const decision = table.route(l7);
  const upstream = decision.kind === "route" ? upstreams[decision.destination.subset] : undefined;
  if (!upstream) {
    // Never expected with this VirtualService: answer 500 so the load counts it as an error.
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(`unexpected route decision ${decision.kind}`);
    return;
  }
  const headers = {};
  for (const [k, v] of Object.entries(l7.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
  headers.host = decision.rewrite?.authority ?? l7.authority;
  headers["x-forwarded-proto"] = "http";
  const up = request(
    {
      host: upstream.host,
      port: upstream.port,
      agent: upstream.agent,
      method: l7.method,
      path: decision.rewrite?.path ?? l7.path,
      headers,
    },
    (upRes) => {
      const out = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
    },
  );
  up.once("error", (err) => {
    if (!res.headersSent) res.writeHead(503, { "content-type": "text/plain" });
    res.end(`upstream error: ${err.message}`);
  });
  req.pipe(up);
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.on("connection", (socket) => socket.setNoDelay(true));
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen({ host: CORE.host, port: CORE.port }, resolve);
});
process.stdout.write("ready\n");

function stop() {
  server.closeAllConnections();
  server.close();
  upstreams.v1.agent.destroy();
  upstreams.v2.agent.destroy();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
