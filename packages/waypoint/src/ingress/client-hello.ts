// Reads the server name (SNI) from a TLS ClientHello without consuming it: a TLS port decides by
// SNI whether to pass the connection through untouched (PASSTHROUGH) or terminate it, and which
// certificate to present, before any TLS library sees a byte (Envoy's tls_inspector). RFC 8446
// 4.1.2 and RFC 6066 section 3; the ClientHello must fit in the first record, as every client's
// does (a record holds 16 KiB). Bounded: anything malformed is "not TLS", never an exception.

export type HelloResult =
  | { kind: "need-more" }
  | { kind: "not-tls"; reason: string }
  | { kind: "hello"; serverName?: string; alpn: string[] };

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const MAX_RECORD = 16_384 + 256;

export function parseClientHello(buf: Buffer): HelloResult {
  if (buf.length < 5) return { kind: "need-more" };
  if (buf[0] !== HANDSHAKE)
    return { kind: "not-tls", reason: "the first byte is not a TLS handshake record" };
  if (buf[1] !== 3) return { kind: "not-tls", reason: "not a TLS record version" };
  const recordLength = buf.readUInt16BE(3);
  if (recordLength > MAX_RECORD)
    return { kind: "not-tls", reason: "a TLS record longer than the protocol allows" };
  if (buf.length < 5 + recordLength) return { kind: "need-more" };
  const r = new Reader(buf.subarray(5, 5 + recordLength));
  try {
    if (r.u8() !== CLIENT_HELLO)
      return { kind: "not-tls", reason: "the first handshake message is not a ClientHello" };
    const helloLength = r.u24();
    if (helloLength > r.remaining()) return { kind: "not-tls", reason: "a ClientHello split across records" };
    r.skip(2 + 32); // legacy_version, random
    r.skip(r.u8()); // legacy_session_id
    r.skip(r.u16()); // cipher_suites
    r.skip(r.u8()); // legacy_compression_methods
    if (r.remaining() === 0) return { kind: "hello", alpn: [] }; // no extensions at all
    const extensions = r.sub(r.u16());
    let serverName: string | undefined;
    const alpn: string[] = [];
    while (extensions.remaining() > 0) {
      const type = extensions.u16();
      const body = extensions.sub(extensions.u16());
      if (type === EXT_SERVER_NAME) {
        const list = body.sub(body.u16());
        while (list.remaining() > 0) {
          const nameType = list.u8();
          const name = list.bytes(list.u16());
          if (nameType === 0) serverName = name.toString("ascii").toLowerCase();
        }
      } else if (type === EXT_ALPN) {
        const list = body.sub(body.u16());
        while (list.remaining() > 0) alpn.push(list.bytes(list.u8()).toString("ascii"));
      }
    }
    return { kind: "hello", ...(serverName ? { serverName } : {}), alpn };
  } catch {
    return { kind: "not-tls", reason: "a truncated or malformed ClientHello" };
  }
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  remaining(): number {
    return this.buf.length - this.at;
  }
  private need(n: number): void {
    if (n > this.remaining()) throw new RangeError("short");
  }
  u8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  u24(): number {
    return (this.u8() << 16) | this.u16();
  }
  skip(n: number): void {
    this.need(n);
    this.at += n;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  sub(n: number): Reader {
    return new Reader(this.bytes(n));
  }
}
