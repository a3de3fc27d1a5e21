import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { AmbientError, Socks5ErrorCode, Socks5Reply } from "@ambient/core";
import { eventually } from "@ambient/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { readSocks5Request, type Socks5Request, sendSocks5Reply } from "./socks5.js";

// ---- a loopback server running the handshake, and a byte-level client ----

interface Accepted {
  socket: Socket;
  result: Promise<Socks5Request>;
}

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** Listens on 127.0.0.1:0; each accepted socket runs readSocks5Request. */
async function startServer(timeoutMs?: number): Promise<{ port: number; accepted: () => Promise<Accepted> }> {
  const queue: Accepted[] = [];
  const waiters: ((a: Accepted) => void)[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    const result = readSocks5Request(socket, timeoutMs === undefined ? {} : { timeoutMs });
    result.catch(() => {}); // asserted by the tests that expect it
    const a = { socket, result };
    const w = waiters.shift();
    if (w) w(a);
    else queue.push(a);
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  return {
    port,
    accepted: () => {
      const a = queue.shift();
      return a ? Promise.resolve(a) : new Promise((r) => waiters.push(r));
    },
  };
}

/** A client that collects what the server sends and can wait for exact byte counts. */
class Client {
  readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    sockets.push(this.socket);
    this.socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const done = () => {
      this.ended = true;
      this.wake?.();
    };
    this.socket.on("end", done);
    this.socket.on("close", done);
    this.socket.on("error", () => {});
  }

  async ready(): Promise<this> {
    if (this.socket.connecting) await once(this.socket, "connect");
    return this;
  }

  send(...bytes: (number[] | Buffer | string)[]): void {
    for (const b of bytes) this.socket.write(typeof b === "string" ? Buffer.from(b) : Buffer.from(b));
  }

  /** Exactly n bytes, or throws if the server closes first. */
  async read(n: number): Promise<number[]> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`closed after ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return [...out];
  }

  /** Everything until the server closes. */
  async rest(): Promise<number[]> {
    while (!this.ended) {
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
    const out = [...this.buf];
    this.buf = Buffer.alloc(0);
    return out;
  }
}

async function setup(timeoutMs?: number) {
  const server = await startServer(timeoutMs);
  const client = await new Client(server.port).ready();
  const accepted = await server.accepted();
  return { client, ...accepted };
}

const GREETING = [5, 1, 0];
const port = (p: number) => [p >> 8, p & 0xff];
const connectIPv4 = (a: number[], p: number) => [5, 1, 0, 1, ...a, ...port(p)];
const connectDomain = (name: string, p: number) => [
  5,
  1,
  0,
  3,
  name.length,
  ...Buffer.from(name),
  ...port(p),
];
const SUCCESS_ZERO = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];

async function rejection(result: Promise<unknown>): Promise<AmbientError> {
  try {
    await result;
  } catch (err) {
    return err as AmbientError;
  }
  throw new Error("expected a rejection");
}

async function closedOnServer(socket: Socket): Promise<void> {
  if (!socket.destroyed) await once(socket, "close");
}

// ---- requests ----

describe("readSocks5Request", () => {
  it("reads an IPv4 CONNECT, replies, and then carries data both ways", async () => {
    const { client, socket, result } = await setup();
    client.send(GREETING);
    expect(await client.read(2)).toEqual([5, 0]);
    client.send(connectIPv4([10, 1, 2, 3], 8080));
    expect(await result).toEqual({ kind: "ipv4", host: "10.1.2.3", port: 8080 });

    sendSocks5Reply(socket, Socks5Reply.SUCCEEDED);
    expect(await client.read(10)).toEqual(SUCCESS_ZERO);
    socket.pipe(socket); // echo
    client.send("ping");
    expect(Buffer.from(await client.read(4)).toString()).toBe("ping");
  });

  it.each([
    ["2001:db8::1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "ipv6"],
    ["fe80::1:0:0:1", [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], "ipv6"],
    ["::1", [...new Array(15).fill(0), 1], "ipv6"],
    ["10.0.0.7", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7], "ipv4"],
  ])("reads an IPv6 CONNECT to %s", async (host, bytes, kind) => {
    const { client, result } = await setup();
    client.send(GREETING, [5, 1, 0, 4, ...bytes, ...port(443)]);
    expect(await result).toEqual({ kind, host, port: 443 });
  });

  it.each([
    ["web.demo.svc.cluster.local", { kind: "domain", host: "web.demo.svc.cluster.local" }],
    ["Web.Demo.SVC.cluster.local.", { kind: "domain", host: "web.demo.svc.cluster.local" }],
    ["localhost", { kind: "domain", host: "localhost" }],
    ["10.0.0.9", { kind: "ipv4", host: "10.0.0.9" }],
    ["[fd00::9]", { kind: "ipv6", host: "fd00::9" }],
  ])("reads a domain CONNECT to %s", async (name, expected) => {
    const { client, result } = await setup();
    client.send(GREETING, connectDomain(name, 80));
    expect(await result).toEqual({ ...expected, port: 80 });
  });

  it("waits for bytes split across many segments", async () => {
    const { client, result } = await setup();
    const all = [...GREETING, ...connectDomain("api.demo.svc.cluster.local", 9090)];
    for (const b of all) {
      client.send([b]);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await result).toEqual({ kind: "domain", host: "api.demo.svc.cluster.local", port: 9090 });
  });

  it("keeps early payload coalesced with the handshake in the socket", async () => {
    const { client, socket, result } = await setup();
    const payload = "GET / HTTP/1.1\r\nHost: web\r\n\r\n";
    client.send(Buffer.from([...GREETING, ...connectIPv4([127, 0, 0, 1], 80), ...Buffer.from(payload)]));
    expect(await result).toEqual({ kind: "ipv4", host: "127.0.0.1", port: 80 });
    expect(await client.read(2)).toEqual([5, 0]);

    let received = "";
    socket.on("data", (d: Buffer) => {
      received += d.toString();
    });
    await eventually(() => expect(received).toBe(payload));
  });

  it("keeps early payload when the client closes its side right after it", async () => {
    const { client, socket, result } = await setup();
    client.socket.end(Buffer.from([...GREETING, ...connectIPv4([127, 0, 0, 1], 80), ...Buffer.from("bye")]));
    await result;
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    await once(socket, "end");
    expect(Buffer.concat(chunks).toString()).toBe("bye");
  });

  it("reads ports at both ends of the range", async () => {
    for (const p of [1, 65535]) {
      const { client, result } = await setup();
      client.send(GREETING, connectIPv4([1, 2, 3, 4], p));
      expect((await result).port).toBe(p);
    }
  });
});

// ---- refusals ----

describe("readSocks5Request refusals", () => {
  it.each([
    ["only username/password", [5, 1, 2]],
    ["GSSAPI and username/password", [5, 2, 1, 2]],
    ["no methods at all", [5, 0]],
  ])("answers 0xFF when the client offers %s", async (_name, greeting) => {
    const { client, socket, result } = await setup();
    client.send(greeting);
    expect(await client.rest()).toEqual([5, 0xff]);
    expect((await rejection(result)).code).toBe(Socks5ErrorCode.NO_ACCEPTABLE_METHOD);
    await closedOnServer(socket);
  });

  it.each([
    ["BIND", 2],
    ["UDP ASSOCIATE", 3],
    ["an unknown command", 9],
  ])("answers 0x07 to %s", async (_name, cmd) => {
    const { client, socket, result } = await setup();
    client.send(GREETING, [5, cmd, 0, 1, 10, 0, 0, 1, ...port(80)]);
    const reply = await client.rest();
    expect(reply.slice(0, 2)).toEqual([5, 0]); // method selection
    expect(reply.slice(2, 4)).toEqual([5, Socks5Reply.COMMAND_NOT_SUPPORTED]);
    expect(reply).toHaveLength(2 + 10);
    const err = await rejection(result);
    expect(err).toBeInstanceOf(AmbientError);
    expect(err.code).toBe(Socks5ErrorCode.COMMAND_NOT_SUPPORTED);
    await closedOnServer(socket);
  });

  it("answers 0x08 to an unknown address type", async () => {
    const { client, result } = await setup();
    client.send(GREETING, [5, 1, 0, 0x05, 1, 2, 3, 4, ...port(80)]);
    expect((await client.rest()).slice(2, 4)).toEqual([5, Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED]);
    expect((await rejection(result)).code).toBe(Socks5ErrorCode.ADDRESS_TYPE_NOT_SUPPORTED);
  });

  it.each([
    ["an empty domain", [5, 1, 0, 3, 0, ...port(80)]],
    ["a domain with a space", connectDomain("evil host", 80)],
    ["a domain with a control character", connectDomain("a\x00b", 80)],
  ])("refuses %s", async (_name, request) => {
    const { client, result } = await setup();
    client.send(GREETING, request);
    const reply = await client.rest();
    expect(reply[2]).toBe(5);
    expect(reply[3]).not.toBe(Socks5Reply.SUCCEEDED);
    expect((await rejection(result)).code).toBe(Socks5ErrorCode.PROTOCOL);
  });

  it.each([
    ["SOCKS4", [4, 1, 0, 80, 10, 0, 0, 1, 0]],
    ["HTTP", [...Buffer.from("GET / HTTP/1.1\r\n")]],
    ["TLS", [0x16, 0x03, 0x01, 0x00, 0xa5]],
  ])("closes on a %s client without answering", async (_name, bytes) => {
    const { client, socket, result } = await setup();
    client.send(bytes);
    expect(await client.rest()).toEqual([]);
    const err = await rejection(result);
    expect(err.code).toBe(Socks5ErrorCode.PROTOCOL);
    expect(err.details).toMatchObject({ phase: "greeting" });
    await closedOnServer(socket);
  });

  it("closes on a wrong version in the request", async () => {
    const { client, result } = await setup();
    client.send(GREETING, [4, 1, 0, 1, 10, 0, 0, 1, ...port(80)]);
    expect(await client.rest()).toEqual([5, 0]);
    expect((await rejection(result)).details).toMatchObject({ phase: "request" });
  });

  it.each([
    ["inside the greeting", [5]],
    ["inside the method list", [5, 3, 0]],
    ["inside the request", [...GREETING, 5, 1]],
    ["inside an IPv4 address", [...GREETING, 5, 1, 0, 1, 10, 0]],
    ["inside a domain", [...GREETING, 5, 1, 0, 3, 10, ...Buffer.from("web")]],
  ])("reports a client that closes %s", async (_name, bytes) => {
    const { client, socket, result } = await setup();
    client.socket.end(Buffer.from(bytes));
    const err = await rejection(result);
    expect(err.code).toBe(Socks5ErrorCode.CLOSED);
    await closedOnServer(socket);
  });

  it("reports a client that resets mid-handshake", async () => {
    const { client, socket, result } = await setup();
    client.send(GREETING);
    await client.read(2);
    client.socket.resetAndDestroy();
    expect((await rejection(result)).code).toBe(Socks5ErrorCode.CLOSED);
    await closedOnServer(socket);
  });

  it("times out a client that stalls", async () => {
    const { client, socket, result } = await setup(50);
    client.send(GREETING, [5, 1]);
    const err = await rejection(result);
    expect(err.code).toBe(Socks5ErrorCode.TIMEOUT);
    expect(err.details).toMatchObject({ phase: "request" });
    await closedOnServer(socket);
    expect(await client.rest()).toEqual([5, 0]);
  });

  it("rejects a socket that is already closed", async () => {
    const { socket } = await setup();
    const again = readSocks5Request(socket);
    socket.destroy();
    expect((await rejection(again)).code).toBe(Socks5ErrorCode.CLOSED);
  });
});

// ---- replies ----

describe("sendSocks5Reply", () => {
  async function connected() {
    const s = await setup();
    s.client.send(GREETING, connectIPv4([10, 0, 0, 1], 80));
    await s.result;
    await s.client.read(2);
    return s;
  }

  it.each([
    [{ host: "10.0.0.5", port: 40000 }, [5, 0, 0, 1, 10, 0, 0, 5, 0x9c, 0x40]],
    [{ host: "::ffff:10.0.0.5", port: 1 }, [5, 0, 0, 1, 10, 0, 0, 5, 0, 1]],
    [{ host: "fd00::1", port: 443 }, [5, 0, 0, 4, 0xfd, ...new Array(14).fill(0), 1, 1, 0xbb]],
    [{ host: "ztunnel.local", port: 15008 }, [5, 0, 0, 3, 13, ...Buffer.from("ztunnel.local"), 0x3a, 0xa0]],
  ])("encodes the bound address %j", async (bound, expected) => {
    const { client, socket } = await connected();
    sendSocks5Reply(socket, Socks5Reply.SUCCEEDED, bound);
    expect(await client.read(expected.length)).toEqual(expected);
  });

  it("closes the connection after a failure reply", async () => {
    const { client, socket } = await connected();
    sendSocks5Reply(socket, Socks5Reply.NOT_ALLOWED);
    expect(await client.rest()).toEqual([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    await closedOnServer(socket);
  });
});
