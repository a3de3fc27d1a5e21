// An HTTP/2 client that writes frames by hand (RFC 9113), for tests that must send what no real
// client would: floods of HEADERS+RST_STREAM, streams past the server's limit, CONTINUATION without
// END_HEADERS, header blocks past the advertised size, garbage after the preface. It speaks over
// mutual TLS 1.3 with a workload certificate, as HBONE peers do, and records every frame it reads.

import { once } from "node:events";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { clientTlsOptions, type WorkloadCertificate } from "@ambient/core";
import { encodeHeaders, HpackDecoder } from "./hpack.js";

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** HEADERS (with its CONTINUATIONs): the decoded header list. */
  headers?: Record<string, string>;
}

export interface RawH2Options {
  host: string;
  port: number;
  localAddress?: string;
  certificate: WorkloadCertificate;
  rootsPem: readonly string[];
  /** The server's SPIFFE ID, checked as an HBONE client would. */
  serverIdentity: string;
  /** Send the connection preface and an empty SETTINGS (default true). */
  preface?: boolean;
}

export class RawH2 {
  readonly frames: Frame[] = [];
  /** The server's SETTINGS, as received (first frame). */
  readonly serverSettings = new Map<number, number>();
  readonly closed: Promise<void>;
  #buffer: Buffer = Buffer.alloc(0);
  #decoder = new HpackDecoder();
  #pendingBlock: { streamId: number; flags: number; parts: Buffer[] } | undefined;
  #waiters = new Set<() => void>();
  #closed = false;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#closed = true;
        this.#wake();
        resolve();
      }),
    );
  }

  static async connect(opts: RawH2Options): Promise<RawH2> {
    const socket = connectTls({
      ...clientTlsOptions(opts.certificate, opts.rootsPem, [opts.serverIdentity]),
      host: opts.host,
      port: opts.port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    await once(socket, "secureConnect");
    return RawH2.start(socket, opts.preface);
  }

  /** Prior-knowledge HTTP/2 without TLS (h2c), as a plaintext gRPC client speaks it. */
  static async connectPlain(opts: { host: string; port: number; preface?: boolean }): Promise<RawH2> {
    const socket = connectTcp({ host: opts.host, port: opts.port });
    await once(socket, "connect");
    return RawH2.start(socket, opts.preface);
  }

  private static async start(socket: Socket, preface = true): Promise<RawH2> {
    const h2 = new RawH2(socket);
    if (preface) {
      socket.write(PREFACE);
      h2.settings({});
      // Our SETTINGS ACK must not land inside a header block a test is writing, so the server's
      // SETTINGS are read (and acknowledged) before anything else is sent.
      await h2.waitFor((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK));
    }
    return h2;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(streamId & 0x7fffffff, 5);
    return Buffer.concat([head, payload]);
  }

  send(type: number, flags: number, streamId: number, payload?: Buffer): void {
    this.write(this.frame(type, flags, streamId, payload));
  }

  settings(entries: Partial<Record<number, number>>): void {
    const list = Object.entries(entries);
    const payload = Buffer.alloc(6 * list.length);
    list.forEach(([id, value], i) => {
      payload.writeUInt16BE(Number(id), 6 * i);
      payload.writeUInt32BE(value ?? 0, 6 * i + 2);
    });
    this.send(FrameType.SETTINGS, 0, 0, payload);
  }

  /** HEADERS frame bytes for a request with exactly these fields (pseudo-headers first). */
  headersFrame(streamId: number, fields: [string, string][], flags: number = Flag.END_HEADERS): Buffer {
    return this.frame(FrameType.HEADERS, flags, streamId, encodeHeaders(fields));
  }

  /** HEADERS frame bytes for a CONNECT to `authority` (plus `extra` headers). */
  connectFrame(
    streamId: number,
    authority: string,
    opts: { extra?: [string, string][]; endHeaders?: boolean } = {},
  ) {
    const block = encodeHeaders([[":method", "CONNECT"], [":authority", authority], ...(opts.extra ?? [])]);
    return this.frame(FrameType.HEADERS, opts.endHeaders === false ? 0 : Flag.END_HEADERS, streamId, block);
  }

  /** Sends a CONNECT and resolves with the response headers, or the RST_STREAM code that ended it. */
  async connect(
    streamId: number,
    authority: string,
    timeoutMs = 5_000,
  ): Promise<{ status?: number; rst?: number }> {
    this.write(this.connectFrame(streamId, authority));
    const f = await this.waitFor(
      (x) => x.streamId === streamId && (x.type === FrameType.HEADERS || x.type === FrameType.RST_STREAM),
      timeoutMs,
    );
    if (f.type === FrameType.RST_STREAM) return { rst: f.payload.readUInt32BE(0) };
    return { status: Number(f.headers?.[":status"]) };
  }

  data(streamId: number, bytes: Buffer, endStream = false): void {
    this.send(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, bytes);
  }

  rst(streamId: number, code: number = ErrorCode.CANCEL): Buffer {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(code);
    return this.frame(FrameType.RST_STREAM, 0, streamId, payload);
  }

  /** The DATA a stream has received so far, concatenated. */
  received(streamId: number): Buffer {
    return Buffer.concat(
      this.frames.filter((f) => f.type === FrameType.DATA && f.streamId === streamId).map((f) => f.payload),
    );
  }

  /** The GOAWAY the server sent, if any: its error code and debug text. */
  goaway(): { code: number; lastStreamId: number; debug: string } | undefined {
    const f = this.frames.find((x) => x.type === FrameType.GOAWAY);
    if (!f) return undefined;
    return {
      lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
      code: f.payload.readUInt32BE(4),
      debug: f.payload.subarray(8).toString("utf8"),
    };
  }

  /** Resolves with the first frame (already read or still to come) for which `match` holds. */
  async waitFor(match: (f: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.#closed)
        throw new Error(`connection closed before the frame came (goaway: ${JSON.stringify(this.goaway())})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) break;
      const frame: Frame = {
        type: this.#buffer[3]!,
        flags: this.#buffer[4]!,
        streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buffer.subarray(9, 9 + length)),
      };
      this.#buffer = this.#buffer.subarray(9 + length);
      this.#onFrame(frame);
    }
    this.#wake();
  }

  #onFrame(frame: Frame): void {
    if (frame.type === FrameType.SETTINGS && !(frame.flags & Flag.ACK)) {
      for (let i = 0; i + 6 <= frame.payload.length; i += 6)
        this.serverSettings.set(frame.payload.readUInt16BE(i), frame.payload.readUInt32BE(i + 2));
      this.send(FrameType.SETTINGS, Flag.ACK, 0);
    }
    if (frame.type === FrameType.PING && !(frame.flags & Flag.ACK))
      this.send(FrameType.PING, Flag.ACK, 0, frame.payload);
    if (frame.type === FrameType.HEADERS) {
      // Padding and priority fields: nghttp2 sends neither, so the fragment is the whole payload.
      this.#pendingBlock = { streamId: frame.streamId, flags: frame.flags, parts: [frame.payload] };
    } else if (frame.type === FrameType.CONTINUATION && this.#pendingBlock) {
      this.#pendingBlock.parts.push(frame.payload);
    }
    const block = this.#pendingBlock;
    if (
      block &&
      (frame.type === FrameType.HEADERS || frame.type === FrameType.CONTINUATION) &&
      frame.flags & Flag.END_HEADERS
    ) {
      this.#pendingBlock = undefined;
      const headers = Object.fromEntries(this.#decoder.decode(Buffer.concat(block.parts)));
      this.frames.push({
        type: FrameType.HEADERS,
        flags: block.flags,
        streamId: block.streamId,
        payload: frame.payload,
        headers,
      });
      return;
    }
    if (frame.type !== FrameType.HEADERS && frame.type !== FrameType.CONTINUATION) this.frames.push(frame);
  }
}
