// A minimal HTTPS client for the server's own tests: one request with the admin client
// certificate, and a watch whose events are collected as they arrive.

import { request as httpsRequest } from "node:https";
import type { TestApiServer } from "./server.js";

export interface Answer {
  status: number;
  body: any;
}

function options(server: TestApiServer, method: string, path: string, headers: Record<string, string>) {
  const url = new URL(path, server.url);
  return {
    method,
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    ca: server.pki.caPem,
    cert: server.pki.clientCertPem,
    key: server.pki.clientKeyPem,
    headers,
    // A fresh connection per request: restart() tests must not reuse a socket the server dropped.
    agent: false,
  };
}

export function call(
  server: TestApiServer,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<Answer> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": contentType };
  // Node sends GET and DELETE bodies unframed unless told their length.
  if (payload !== undefined) headers["content-length"] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(options(server, method, path, headers), (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: text.startsWith("{") ? JSON.parse(text) : text });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

export interface WatchStream {
  events: { type: string; object: any }[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export function watch(server: TestApiServer, path: string): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const events: WatchStream["events"] = [];
    let buffered = "";
    const req = httpsRequest(options(server, "GET", path, {}), (res) => {
      const ended = new Promise<void>((done) => {
        res.on("end", done);
        res.on("close", done);
      });
      res.on("data", (c: Buffer) => {
        buffered += c.toString();
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          events.push(JSON.parse(buffered.slice(0, nl)));
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf("\n");
        }
      });
      resolve({ events, ended, close: () => req.destroy() });
    });
    req.on("error", (err) => {
      if ((err as NodeJS.ErrnoException).code !== "ECONNRESET") reject(err);
    });
    req.end();
  });
}
