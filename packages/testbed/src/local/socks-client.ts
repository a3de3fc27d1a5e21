// A minimal SOCKS5 client (RFC 1928, no auth, CONNECT) and a raw HTTP/1.1 GET over it: what an app
// in a local-mode pod does, where the pod's ztunnel SOCKS5 listener (podIP:15080) is the way in.

import { connect, isIPv4, type Socket } from "node:net";

export class SocksError extends Error {
  constructor(readonly reply: number) {
    super(`SOCKS5 reply ${reply}`);
  }
}

/** Resolves with the tunnelled socket, paused: attach listeners, then `resume()`. */
export function socksConnect(
  proxy: { host: string; port: number },
  target: { host: string; port: number },
  opts: { localAddress?: string } = {},
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true, ...opts });
    let buf = Buffer.alloc(0);
    let stage: "greeting" | "reply" = "greeting";
    const fail = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once("error", fail);
    s.once("connect", () => s.write(Buffer.from([5, 1, 0])));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === "greeting") {
        if (buf.length < 2) return;
        if (buf[0] !== 5 || buf[1] !== 0) return fail(new Error("SOCKS5 method refused"));
        buf = buf.subarray(2);
        stage = "reply";
        const port = Buffer.from([target.port >> 8, target.port & 255]);
        const addr = isIPv4(target.host)
          ? Buffer.from([1, ...target.host.split(".").map(Number)])
          : Buffer.concat([Buffer.from([3, Buffer.byteLength(target.host)]), Buffer.from(target.host)]);
        s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, port]));
      }
      if (stage === "reply") {
        if (buf.length < 2) return;
        if (buf[1] !== 0) return fail(new SocksError(buf[1]!));
        if (buf.length < 10) return;
        s.removeListener("data", onData);
        s.removeListener("error", fail);
        s.removeListener("end", onEnd);
        // Paused, so bytes that came with the reply wait for the caller's listeners (resume()).
        s.pause();
        const rest = buf.subarray(10);
        if (rest.length > 0) s.unshift(rest);
        resolve(s);
      }
    };
    s.on("data", onData);
    // allowHalfOpen: the proxy's FIN arrives as 'end' and no 'close' follows until we end too, so a
    // proxy that gives up before its reply (a pod unenrolled mid-handshake) must be seen here.
    const onEnd = () => fail(new Error("SOCKS5 proxy closed the connection before its reply"));
    s.once("end", onEnd);
    s.once("close", () => reject(new Error("SOCKS5 proxy closed the connection")));
  });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** GET http://host:port/path through pod `fromIp`'s SOCKS5 listener. */
export function httpGetViaSocks(fromIp: string, host: string, port: number, path = "/"): Promise<HttpResult> {
  return httpViaSocks(fromIp, { host, port, path });
}

export interface SocksHttpRequest {
  host: string;
  port: number;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** The whole exchange, SOCKS5 handshake included (default 15 s): a hung request fails, naming itself. */
  timeoutMs?: number;
  /** The pod's SOCKS5 port (ztunnel's 15080 unless a test proxy stands in). */
  proxyPort?: number;
}

/** One HTTP/1.1 request (Connection: close) from pod `fromIp` through its SOCKS5 listener. */
export async function httpViaSocks(fromIp: string, req: SocksHttpRequest): Promise<HttpResult> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `no HTTP answer within ${timeoutMs} ms for ${req.method ?? "GET"} ${req.host}:${req.port}${req.path ?? "/"} from ${fromIp} through its SOCKS5 listener`,
          ),
        ),
      timeoutMs,
    );
  });
  let socket: Socket | undefined;
  try {
    return await Promise.race([exchange(fromIp, req, (s) => (socket = s)), deadline]);
  } finally {
    clearTimeout(timer);
    socket?.destroy();
  }
}

const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

async function exchange(
  fromIp: string,
  req: SocksHttpRequest,
  opened: (s: Socket) => void,
): Promise<HttpResult> {
  const s = await socksConnect(
    { host: fromIp, port: req.proxyPort ?? 15080 },
    { host: req.host, port: req.port },
    { localAddress: fromIp },
  );
  opened(s);
  // A `host` in headers replaces the Host header (a request naming another target than it dials).
  const given = Object.entries(req.headers ?? {});
  const hostOverride = given.find(([k]) => k.toLowerCase() === "host")?.[1];
  const extra = given
    .filter(([k]) => k.toLowerCase() !== "host")
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const hostHeader = hostOverride ?? (req.port === 80 ? req.host : `${req.host}:${req.port}`);
  const body = req.body ?? Buffer.alloc(0);
  s.write(
    `${req.method ?? "GET"} ${req.path ?? "/"} HTTP/1.1\r\nHost: ${hostHeader}\r\n${extra}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  );
  s.end(body);
  const raw = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks).toString()));
    s.once("error", reject);
    s.resume();
  });
  return parseHttp(raw);
}

export function parseHttp(raw: string): HttpResult {
  const split = raw.indexOf("\r\n\r\n");
  if (split < 0) throw new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 100))}`);
  const [statusLine, ...lines] = raw.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.slice(split + 4);
  if (headers["transfer-encoding"] === "chunked") body = dechunk(body);
  return {
    status: Number(statusLine!.split(" ")[1]),
    headers,
    body,
    json: () => JSON.parse(body),
  };
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const nl = rest.indexOf("\r\n");
    const size = Number.parseInt(rest.slice(0, nl), 16);
    if (!size) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}
