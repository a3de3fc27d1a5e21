// One HBONE server session's limits, on top of nghttp2's: streams past the concurrency limit are
// refused one by one, a session that floods resets or sits idle is closed with GOAWAY, and streams
// Node reset below us are noticed. Each way a session ends is logged once, with its code.

import { constants, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import { classify } from "../errors/classify.js";
import { errorMessage, findCode } from "../errors/errors.js";
import type { Logger } from "../telemetry/logging.js";
import { HboneErrorCode } from "./errors.js";
import {
  HANDSHAKE_TIMEOUT_MS,
  MAX_HEADER_LIST_BYTES,
  RESET_FLOOD_WINDOW,
  SERVER_IDLE_TIMEOUT_MS,
  SERVER_MAX_CONCURRENT_STREAMS,
  STREAM_REFUSAL_RESERVE,
} from "./settings.js";

export interface HboneServerLimits {
  /** The TLS handshake, and then the first CONNECT after it, must come within this. */
  handshakeTimeoutMs: number;
  /** A session with no open stream for this long is closed. */
  idleTimeoutMs: number;
  /** Advertised SETTINGS_MAX_CONCURRENT_STREAMS; streams are refused from STREAM_REFUSAL_RESERVE below. */
  maxConcurrentStreams: number;
  /** Advertised SETTINGS_MAX_HEADER_LIST_SIZE; Node resets a stream whose header block is larger. */
  maxHeaderListBytes: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<HboneServerLimits> = {
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  idleTimeoutMs: SERVER_IDLE_TIMEOUT_MS,
  maxConcurrentStreams: SERVER_MAX_CONCURRENT_STREAMS,
  maxHeaderListBytes: MAX_HEADER_LIST_BYTES,
};

/** How long a session we closed may take to read our GOAWAY before its socket is dropped. */
export const GOAWAY_LINGER_MS = 1000;

/** Where a log line about a session says it came from. */
export interface SessionPeerFields {
  remote: string;
  identity: string;
}

export class SessionGuard {
  readonly #session: ServerHttp2Session;
  readonly #socket: TLSSocket;
  readonly #limits: HboneServerLimits;
  readonly #log: Logger;
  readonly #fields: SessionPeerFields;
  readonly #refuseFrom: number;
  #open = 0;
  #opened = 0;
  #wasted = 0;
  /** The highest stream id that reached us: ids skipped below it were reset inside Node. */
  #highestId = 0;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;
  #refusalLogged = false;
  #hiddenLogged = false;

  constructor(
    session: ServerHttp2Session,
    socket: TLSSocket,
    limits: HboneServerLimits,
    log: Logger,
    fields: SessionPeerFields,
  ) {
    this.#session = session;
    this.#socket = socket;
    this.#limits = limits;
    this.#log = log;
    this.#fields = fields;
    this.#refuseFrom = Math.max(1, limits.maxConcurrentStreams - STREAM_REFUSAL_RESERVE);
    this.#arm(
      limits.handshakeTimeoutMs,
      () => `no CONNECT within ${limits.handshakeTimeoutMs} ms of the TLS handshake`,
    );
    session.once("close", () => this.#clearTimer());
    // Node destroys the session after this; we only say why, once.
    session.on("error", (err) => this.#nodeEnded(err));
  }

  /** True once this guard has closed (or seen Node close) the session: no more streams go out. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Called for every new stream, synchronously from Node's 'stream' event (so within the read that
   * carried it). False when the stream was refused here; it must not be handed on.
   */
  admit(stream: ServerHttp2Stream): boolean {
    const id = stream.id ?? 0;
    this.#noticeHiddenRefusals(id - 2);
    this.#highestId = Math.max(this.#highestId, id);
    this.#opened++;
    if (this.#ended) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return false;
    }
    if (this.#open >= this.#refuseFrom) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      if (!this.#refusalLogged) {
        this.#refusalLogged = true;
        this.#logOnce(
          HboneErrorCode.STREAM_REFUSED,
          `refusing streams past ${this.#open} open on one session (REFUSED_STREAM; advertised limit ${this.#limits.maxConcurrentStreams}), first stream ${id}`,
        );
      }
      this.#waste();
      return false;
    }
    this.#open++;
    this.#clearTimer();
    // 'aborted' comes synchronously, inside the read that carried the client's RST_STREAM: counting
    // there lets us act before nghttp2's own reset budget in the same read.
    stream.once("aborted", () => {
      if (!stream.headersSent) this.#waste();
    });
    stream.once("close", () => {
      this.#open--;
      if (this.#open === 0 && !this.#ended)
        this.#arm(this.#limits.idleTimeoutMs, () => `no open stream for ${this.#limits.idleTimeoutMs} ms`);
    });
    return true;
  }

  /** Closes the session now: GOAWAY with `goawayCode` and the reason, then the socket after a linger. */
  close(code: string, reason: string, goawayCode: number = constants.NGHTTP2_NO_ERROR): void {
    if (this.#ended) return;
    this.#noticeHiddenRefusals(this.#lastProcessed());
    this.#ended = true;
    this.#clearTimer();
    this.#log[classify({ code: code }, "server").level](
      { ...this.#fields, code },
      `closing HBONE session: ${reason}`,
    );
    try {
      this.#session.goaway(goawayCode, this.#highestId, Buffer.from(reason.slice(0, 512)));
      this.#session.close();
    } catch {
      // Already closing or destroyed: the socket still goes below.
    }
    setTimeout(() => this.#socket.destroy(), GOAWAY_LINGER_MS).unref();
  }

  /** A stream reset by the client before its answer, or refused by us: closes a flooding session. */
  #waste(): void {
    this.#wasted++;
    if (this.#ended || this.#wasted * 2 < Math.max(this.#opened, RESET_FLOOD_WINDOW)) return;
    this.close(
      HboneErrorCode.RESET_FLOOD,
      `${this.#wasted} of ${this.#opened} streams were reset by the client before an answer or refused (rapid reset)`,
      constants.NGHTTP2_ENHANCE_YOUR_CALM,
    );
  }

  #nodeEnded(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#clearTimer();
    const code = findCode(err) ?? "";
    let ours: string;
    let reason: string;
    if (code.startsWith("AMB_HBONE_")) {
      ours = code;
      reason = errorMessage(err);
    } else if (code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT") {
      ours = HboneErrorCode.CONNECT_FAILED;
      reason = `the connection failed (${code})`;
    } else {
      ours = HboneErrorCode.PROTOCOL;
      reason = `the client broke HTTP/2: ${errorMessage(err)}${code ? ` (${code})` : ""}`;
    }
    this.#log[classify({ code: ours }, "server").level](
      { ...this.#fields, code: ours },
      `HBONE session ended: ${reason}`,
    );
  }

  /**
   * Node resets a stream whose header block is past SETTINGS_MAX_HEADER_LIST_SIZE (or has more than
   * maxHeaderListPairs fields) inside its HTTP/2 layer, without an event; the only trace is a stream
   * id that never reached us. Client stream ids are odd and rise (RFC 9113 §5.1.1), so every id from
   * the one after the highest we saw up to `lastMissing` is such a stream.
   */
  #noticeHiddenRefusals(lastMissing: number): void {
    const first = this.#highestId === 0 ? 1 : this.#highestId + 2;
    if (lastMissing < first || this.#hiddenLogged || this.#ended) return;
    this.#hiddenLogged = true;
    this.#logOnce(
      HboneErrorCode.HEADERS_REFUSED,
      `stream${lastMissing > first ? `s ${first}..${lastMissing}` : ` ${first}`} never reached the server: Node reset ${lastMissing > first ? "them" : "it"} (a header block over ${this.#limits.maxHeaderListBytes} bytes or with too many fields), or the client skipped ids`,
    );
  }

  #lastProcessed(): number {
    try {
      return this.#session.state.lastProcStreamID ?? 0;
    } catch {
      return 0;
    }
  }

  #logOnce(code: string, reason: string): void {
    this.#log[classify({ code: code }, "server").level]({ ...this.#fields, code }, reason);
  }

  #arm(ms: number, reason: () => string): void {
    this.#clearTimer();
    if (ms <= 0) return;
    this.#timer = setTimeout(() => this.close(HboneErrorCode.IDLE, reason()), ms);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
