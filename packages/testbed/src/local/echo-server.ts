// The stand-in app of each local pod: on every container port, an HTTP request gets 200 with a
// JSON body saying who answered and what it saw; any other bytes are echoed back. Protocol is
// sniffed from the first bytes, so one port serves both.

import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";

export interface EchoIdentity {
  pod: string;
  namespace: string;
  serviceAccount: string;
  node: string;
}

const HTTP_METHOD = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS|CONNECT|TRACE) /;

/** What an echo server keeps of each HTTP request (the last REQUEST_LOG_SIZE), for tests and demos. */
export interface EchoRequest {
  method: string;
  path: string;
  host: string;
}
const REQUEST_LOG_SIZE = 100;

export class EchoServer {
  /** The most recent HTTP requests, oldest first. */
  readonly requests: EchoRequest[] = [];
  private readonly servers: Server[] = [];
  private readonly http: HttpServer;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly who: EchoIdentity) {
    this.http = createHttpServer((req, res) => {
      this.requests.push({ method: req.method ?? "", path: req.url ?? "", host: req.headers.host ?? "" });
      if (this.requests.length > REQUEST_LOG_SIZE) this.requests.shift();
      // httpbin's test endpoints, which Istio's tasks use: /status/<code> and /delay/<seconds>.
      const status = /^\/status\/(\d{3})/.exec(req.url ?? "");
      if (status) {
        req.resume();
        res.writeHead(Number(status[1]), { "x-served-by": `${who.namespace}/${who.pod}` });
        res.end();
        return;
      }
      const delay = /^\/delay\/(\d+(?:\.\d+)?)/.exec(req.url ?? "");
      if (delay) {
        req.resume();
        setTimeout(() => {
          res.writeHead(200, {
            "content-type": "application/json",
            "x-served-by": `${who.namespace}/${who.pod}`,
          });
          res.end(`${JSON.stringify({ ...who, delayed: Number(delay[1]) })}\n`);
        }, Number(delay[1]) * 1000);
        return;
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.stringify(
          {
            ...this.who,
            method: req.method,
            path: req.url,
            headers: req.headers,
            peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
            bodyBytes: Buffer.concat(chunks).length,
          },
          null,
          2,
        );
        res.writeHead(200, {
          "content-type": "application/json",
          "x-served-by": `${who.namespace}/${who.pod}`,
        });
        res.end(`${body}\n`);
      });
    });
  }

  async listen(ip: string, port: number): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: ip, port }, () => {
        server.removeListener("error", reject);
        resolve();
      });
    });
    this.servers.push(server);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (HTTP_METHOD.test(first.subarray(0, 8).toString("latin1"))) {
        this.http.emit("connection", socket);
      } else {
        socket.pipe(socket);
      }
      socket.resume();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.http.close();
  }
}
