import { type AddressInfo, createServer, type Server } from "node:net";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "../route/testing.js";
import { parseClientHello } from "./client-hello.js";

// Real ClientHellos: what Node's TLS client sends, captured by a plain TCP server that keeps the
// first record and hangs up (the client's handshake then fails, which is all it is for).
let recorder: Server;
let recorderPort: number;
const waiting: ((hello: Buffer) => void)[] = [];

beforeAll(async () => {
  recorder = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const head = Buffer.concat(chunks);
      if (head.length < 5 || head.length < 5 + head.readUInt16BE(3)) return;
      waiting.shift()?.(head.subarray(0, 5 + head.readUInt16BE(3)));
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
  recorderPort = (recorder.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => recorder.close(() => resolve()));
});

function captureHello(opts: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    const client = connect({ host: "127.0.0.1", port: recorderPort, rejectUnauthorized: false, ...opts });
    client.on("error", () => {});
  });
}

/** The hello with its record and handshake lengths rewritten to end after `bodyLength` handshake bytes. */
function truncatedTo(hello: Buffer, bodyLength: number): Buffer {
  const out = Buffer.from(hello.subarray(0, 5 + 4 + bodyLength));
  out.writeUInt16BE(4 + bodyLength, 3);
  out.writeUInt8((bodyLength >> 16) & 0xff, 6);
  out.writeUInt16BE(bodyLength & 0xffff, 7);
  return out;
}

describe("parseClientHello on what Node's TLS client sends", () => {
  it("reads the SNI (lowercased) and the ALPN list in order", async () => {
    const hello = await captureHello({ servername: "Shop.Example.COM", ALPNProtocols: ["h2", "http/1.1"] });
    expect(parseClientHello(hello)).toEqual({
      kind: "hello",
      serverName: "shop.example.com",
      alpn: ["h2", "http/1.1"],
    });
  });

  it("a client without servername (connecting to an IP) sends no SNI and no ALPN", async () => {
    const hello = await captureHello({});
    const parsed = parseClientHello(hello);
    expect(parsed).toEqual({ kind: "hello", alpn: [] });
    expect("serverName" in parsed).toBe(false);
  });

  it("every prefix of a ClientHello is need-more; the whole of it is the hello", async () => {
    const hello = await captureHello({ servername: "bookinfo.example.com", ALPNProtocols: ["http/1.1"] });
    for (let n = 0; n < hello.length; n++) {
      expect(parseClientHello(hello.subarray(0, n)), `prefix of ${n} bytes`).toEqual({ kind: "need-more" });
    }
    expect(parseClientHello(hello)).toMatchObject({ kind: "hello", serverName: "bookinfo.example.com" });
  });

  it("bytes after the first record (the client's next flight) do not change the answer", async () => {
    const hello = await captureHello({ servername: "a.example.com" });
    const parsed = parseClientHello(Buffer.concat([hello, Buffer.from("\x17\x03\x03\x00\x05hello")]));
    expect(parsed).toMatchObject({ kind: "hello", serverName: "a.example.com" });
  });

  it("a ClientHello whose extensions block is cut short is not TLS", async () => {
    const hello = await captureHello({ servername: "cut.example.com", ALPNProtocols: ["h2"] });
    const bodyLength = hello.length - 9;
    // Cut 10 bytes off the end and make the record and handshake lengths agree with the cut: the
    // extensions length now promises more than is there.
    const parsed = parseClientHello(truncatedTo(hello, bodyLength - 10));
    expect(parsed).toEqual({ kind: "not-tls", reason: "a truncated or malformed ClientHello" });
  });

  it("a handshake that claims more than the record holds is refused, not awaited", async () => {
    const hello = Buffer.from(await captureHello({ servername: "split.example.com" }));
    hello.writeUInt8(0x01, 6); // handshake length + 64 KiB
    expect(parseClientHello(hello)).toEqual({
      kind: "not-tls",
      reason: "a ClientHello split across records",
    });
  });
});

describe("parseClientHello on what is not a ClientHello", () => {
  it.each<[string, Buffer, RegExp]>([
    [
      "an HTTP request line",
      Buffer.from("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
      /not a TLS handshake/,
    ],
    ["an HTTP/2 preface", Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), /not a TLS handshake/],
    ["a handshake record of SSL 2 version", Buffer.from([0x16, 2, 0, 0, 4, 1, 0, 0, 0]), /record version/],
    ["a record longer than 16 KiB + 256", Buffer.from([0x16, 3, 1, 0x41, 0x01]), /longer than the protocol/],
    ["a ServerHello", Buffer.from([0x16, 3, 3, 0, 4, 0x02, 0, 0, 0]), /not a ClientHello/],
    ["an empty handshake record", Buffer.from([0x16, 3, 1, 0, 0]), /truncated or malformed/],
    ["a ClientHello with nothing after its header", Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0, 0]), /malformed/],
  ])("%s", (_name, buf, reason) => {
    const parsed = parseClientHello(buf);
    expect(parsed.kind).toBe("not-tls");
    expect(parsed.kind === "not-tls" && parsed.reason).toMatch(reason);
  });

  it("a record of exactly 16 KiB + 256 is awaited, not refused", () => {
    expect(parseClientHello(Buffer.from([0x16, 3, 1, 0x41, 0x00]))).toEqual({ kind: "need-more" });
  });

  it("random bytes, truncations and corruptions of a real hello never throw", async () => {
    const hello = await captureHello({ servername: "fuzz.example.com", ALPNProtocols: ["h2", "http/1.1"] });
    const random = seededRandom(0x5eed);
    const int = (n: number) => Math.floor(random() * n);
    const kinds = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      let buf: Buffer;
      switch (i % 4) {
        case 0: // noise, sometimes dressed as a handshake record
          buf = Buffer.from(Array.from({ length: int(64) }, () => int(256)));
          if (buf.length >= 3 && random() < 0.5) buf.set([0x16, 3, int(4)], 0);
          break;
        case 1: // a real hello cut anywhere, lengths adjusted to the cut
          buf = truncatedTo(hello, int(hello.length - 9));
          break;
        case 2: // a real hello with a few bytes changed
          buf = Buffer.from(hello);
          for (let k = 0; k < 1 + int(4); k++) buf[9 + int(hello.length - 9)] = int(256);
          break;
        default: // a real hello with a byte inside its extensions set to a large length
          buf = Buffer.from(hello);
          buf[hello.length - 1 - int(60)] = 0xff;
      }
      let parsed: ReturnType<typeof parseClientHello> | undefined;
      expect(
        () => {
          parsed = parseClientHello(buf);
        },
        `case ${i}: ${buf.toString("hex")}`,
      ).not.toThrow();
      kinds.add(parsed!.kind);
      if (parsed!.kind === "not-tls") expect(parsed!.reason).not.toBe("");
      if (parsed!.kind === "hello") for (const p of parsed!.alpn) expect(typeof p).toBe("string");
    }
    // The loop reached each outcome, so it exercised more than the first byte check.
    expect([...kinds].sort()).toEqual(["hello", "need-more", "not-tls"]);
  });
});
