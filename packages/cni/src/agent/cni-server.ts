// The node agent's side of the plugin protocol: HTTP/1.1 on a unix socket only root can open
// (0600), POST /v1/cni/add and /v1/cni/del with JSON bodies, GET /v1/cni/status for the plugin's
// STATUS. A bad body gets a 400 naming every bad field; a failing callback a 500 (or the 4xx it
// carries) with {"error"}; nothing a client sends can take the server down. Bytes that are not HTTP,
// a head past Node's 16 KiB limit (a 100 MB line) or a request that does not arrive in time are
// answered 400/431/408 and the connection closed, with one log line each.

import { chmod, mkdir, rm } from "node:fs/promises";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import { connect, isIP, type Socket } from "node:net";
import { dirname } from "node:path";
import { AmbientError, ErrorCode, errorMessage, type Logger } from "@ambient/core";
import type { CniAddRequest, CniDelRequest } from "./agent.js";
import { AgentSocketErrorCode, agentSocketLogLevel } from "./errors.js";

/** A request is a few hundred bytes; this bounds what a confused client can make us buffer. */
const MAX_BODY_BYTES = 64 * 1024;
/**
 * The plugin writes its request at once, and the runtime waits on the plugin: a connection that has
 * not delivered a whole request after this is stuck. Node's defaults are 60 s for the head and 300 s
 * for the request, checked every 30 s.
 */
export const REQUEST_TIMEOUT_MS = 10_000;

export interface CniServerOptions {
  socketPath: string;
  onAdd(req: CniAddRequest): Promise<{ enrolled: boolean }>;
  onDel(req: CniDelRequest): Promise<void>;
  logger: Logger;
  /** Bound on receiving one whole request (tests shorten it). */
  requestTimeoutMs?: number;
}

export interface CniServer {
  close(): Promise<void>;
}

export async function startCniServer(o: CniServerOptions): Promise<CniServer> {
  const log = o.logger.child({ component: "cni-server" });
  await mkdir(dirname(o.socketPath), { recursive: true });
  await removeStaleSocket(o.socketPath);
  const timeoutMs = o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const server = createServer(
    {
      requestTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      // Node enforces both timeouts by a sweep at this interval.
      connectionsCheckingInterval: Math.min(1_000, timeoutMs),
    },
    (req, res) => {
      handle(req, res, o, log).catch((err) => {
        log.error({ err }, "cni request handler failed");
        reply(res, 500, { error: errorMessage(err) });
      });
    },
  );
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => refuseClient(err, socket, log));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new AmbientError(ErrorCode.LISTEN_FAILED, `cannot listen on ${o.socketPath}: ${err.message}`, {
          cause: err,
          details: { socketPath: o.socketPath },
        }),
      ),
    );
    server.listen(o.socketPath, () => resolve());
  });
  // Only root (the runtime running the plugin) may tell us about pods.
  await chmod(o.socketPath, 0o600);
  log.info({ socketPath: o.socketPath }, "listening for the CNI plugin");
  return { close: () => closeServer(server, o.socketPath) };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  o: CniServerOptions,
  log: Logger,
): Promise<void> {
  const path = (req.url ?? "").split("?")[0];
  if (path === "/v1/cni/status") {
    if (req.method !== "GET")
      return reply(res, 405, { error: `${req.method} not allowed on ${path}; use GET` });
    return reply(res, 200, { ok: true });
  }
  if (path !== "/v1/cni/add" && path !== "/v1/cni/del") {
    return reply(res, 404, { error: `no such endpoint: ${req.method} ${req.url}` });
  }
  if (req.method !== "POST")
    return reply(res, 405, { error: `${req.method} not allowed on ${path}; use POST` });
  const text = await readBody(req);
  if (text === undefined) return reply(res, 413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return reply(res, 400, { error: `body is not JSON: ${errorMessage(err)}` });
  }
  if (path === "/v1/cni/add") {
    return serve(res, log, path, parseAdd(body), async (r) => ({
      ok: true,
      enrolled: (await o.onAdd(r)).enrolled,
    }));
  }
  return serve(res, log, path, parseDel(body), async (r) => {
    await o.onDel(r);
    return { ok: true, enrolled: false };
  });
}

/** A parsed request (or the 400 for a bad one) through its callback to the answer. */
async function serve<T extends { podNamespace: string; podName: string }>(
  res: ServerResponse,
  log: Logger,
  path: string,
  parsed: T | string,
  run: (req: T) => Promise<Record<string, unknown>>,
): Promise<void> {
  if (typeof parsed === "string") {
    log.warn({ path, problem: parsed }, "rejected a bad CNI request");
    return reply(res, 400, { error: parsed });
  }
  try {
    return reply(res, 200, await run(parsed));
  } catch (err) {
    const status = errorStatus(err);
    const pod = `${parsed.podNamespace}/${parsed.podName}`;
    log[status >= 500 ? "error" : "warn"]({ err, path, pod }, "CNI request failed");
    return reply(res, status, { error: errorMessage(err) });
  }
}

/** A callback's error may carry the HTTP status it means (the agent's AgentError: 400 for a bad pod). */
function errorStatus(err: unknown): number {
  const status = (err as { status?: unknown })?.status;
  return typeof status === "number" && status >= 400 && status <= 599 ? status : 500;
}

// Body validation: every problem is collected so one 400 says everything that is wrong.

function parseAdd(body: unknown): CniAddRequest | string {
  const problems: string[] = [];
  const b = asObject(body, problems);
  if (!b) return problems.join("; ");
  const req: CniAddRequest = {
    containerId: requiredString(b, "containerId", problems),
    netns: requiredString(b, "netns", problems),
    ifName: requiredString(b, "ifName", problems),
    podName: requiredString(b, "podName", problems),
    podNamespace: requiredString(b, "podNamespace", problems),
    ips: ipList(b, problems),
  };
  return problems.length > 0 ? problems.join("; ") : req;
}

function parseDel(body: unknown): CniDelRequest | string {
  const problems: string[] = [];
  const b = asObject(body, problems);
  if (!b) return problems.join("; ");
  const req: CniDelRequest = {
    containerId: requiredString(b, "containerId", problems),
    ifName: requiredString(b, "ifName", problems),
    podName: requiredString(b, "podName", problems),
    podNamespace: requiredString(b, "podNamespace", problems),
  };
  if (b.netns !== undefined && b.netns !== "") {
    if (typeof b.netns === "string") req.netns = b.netns;
    else problems.push("netns must be a string");
  }
  return problems.length > 0 ? problems.join("; ") : req;
}

function asObject(body: unknown, problems: string[]): Record<string, unknown> | undefined {
  if (typeof body === "object" && body !== null && !Array.isArray(body))
    return body as Record<string, unknown>;
  problems.push("body must be a JSON object");
  return undefined;
}

function requiredString(b: Record<string, unknown>, field: string, problems: string[]): string {
  const v = b[field];
  if (typeof v === "string" && v !== "") return v;
  problems.push(v === undefined ? `${field} is missing` : `${field} must be a non-empty string`);
  return "";
}

function ipList(b: Record<string, unknown>, problems: string[]): string[] {
  const v = b.ips;
  if (!Array.isArray(v)) {
    problems.push(v === undefined ? "ips is missing" : "ips must be an array of IP addresses");
    return [];
  }
  v.forEach((ip, i) => {
    if (typeof ip !== "string" || !isIP(ip))
      problems.push(`ips[${i}] is not an IP address: ${JSON.stringify(ip)}`);
  });
  return v as string[];
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners("data");
        req.resume();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Node's parser or timer refused a connection before any handler ran: answer, say why once, close. */
function refuseClient(err: NodeJS.ErrnoException, socket: Socket, log: Logger): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const timeout = err.code === "ERR_HTTP_REQUEST_TIMEOUT";
  const status = timeout ? 408 : err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
  const code = timeout ? AgentSocketErrorCode.REQUEST_TIMEOUT : AgentSocketErrorCode.BAD_HTTP;
  const why = timeout
    ? "no complete request in time"
    : status === 431
      ? "a request head over 16 KiB (Node's limit)"
      : `not an HTTP/1.1 request (${err.code ?? err.message})`;
  log[agentSocketLogLevel(code)]({ code, status }, `closing a CNI socket connection: ${why}`);
  const text = JSON.stringify({ error: why });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
  // Whatever else the client sends (the rest of a 100 MB line) is not read into memory.
  socket.destroySoon();
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A socket file left by a previous agent is removed; one that someone still answers on is not
 * ours to take (a second agent on the node), so that fails loudly instead.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(socketPath);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  if (live) {
    throw new AmbientError(ErrorCode.LISTEN_FAILED, `another process is already serving ${socketPath}`, {
      details: { socketPath },
    });
  }
  await rm(socketPath, { force: true });
}

async function closeServer(server: Server, socketPath: string): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await rm(socketPath, { force: true });
}
