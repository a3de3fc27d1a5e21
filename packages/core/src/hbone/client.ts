// One HBONE client session, in phases: TCP connect → TLS 1.3 handshake (server identity checked) →
// HTTP/2 session; then one CONNECT per tunnel, handed out only once the server answered 200. Each
// phase fails with its own typed error; pooling and deadlines are pool.ts's business.

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectHttp2,
  constants,
  type IncomingHttpHeaders,
} from "node:http2";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import type { WorkloadCertificate } from "../ca/authority.js";
import type { AmbientError } from "../errors/errors.js";
import type { SpiffeId } from "../identity/spiffe.js";
import { formatAuthority } from "./authority.js";
import { HboneErrorCode, hboneError, isHboneError } from "./errors.js";
import {
  hboneSettings,
  type KeepaliveOptions,
  MAX_SESSION_MEMORY_MB,
  startKeepalive,
  widenConnectionWindow,
} from "./settings.js";
import { clientConnectError } from "./tls-errors.js";
import { clientTlsOptions, spiffeIdFromAltNames } from "./tls-options.js";

/** Makes the TCP socket for a session (bind a source address, set a mark, enter a netns...). */
export type CreateConnection = (opts: { host: string; port: number; localAddress?: string }) => Socket;

export interface HboneStreamInfo {
  /** The server's verified SPIFFE ID (one of the expected identities). */
  peerIdentity: SpiffeId;
  /** Serial of the server's certificate, lowercase hex. */
  peerSerial: string;
  /** `host:port` of the HBONE server. */
  destination: string;
  authority: string;
  responseHeaders: IncomingHttpHeaders;
}

/**
 * A CONNECT tunnel the server accepted: a Duplex of raw bytes. `end()` sends END_STREAM (half-close),
 * the server's END_STREAM gives 'end'. An 'error' listener is already attached (a reset must not
 * crash the process); use `pipeline` or listen yourself to learn about failures.
 */
export interface HboneStream extends ClientHttp2Stream {
  readonly hbone: HboneStreamInfo;
}

export interface OpenSessionOptions {
  source: WorkloadCertificate;
  rootsPem: readonly string[];
  expectedIdentities: readonly string[];
  destination: { host: string; port: number };
  localAddress?: string;
  createConnection?: CreateConnection;
  keepalive?: KeepaliveOptions;
}

export interface ConnectRequestOptions {
  authority: string;
  headers?: Record<string, string>;
  /** Aborting rejects with `signal.reason` and cancels the stream. */
  signal?: AbortSignal;
  /** Called once when the stream closes, however it ends (pools count streams with it). */
  onClose?: () => void;
}

const defaultCreateConnection: CreateConnection = ({ host, port, localAddress }) =>
  connectTcp({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });

/** HTTP/2 error codes (RFC 9113 §7) by value, for messages: 7 → "REFUSED_STREAM". */
const H2_CODE_NAMES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

export function h2CodeName(code: number): string {
  return H2_CODE_NAMES[code] ?? `code ${code}`;
}

export class HboneClientSession {
  /** Set when the server sent GOAWAY: no new streams; the reason is the server's debug data. */
  goaway: { code: number; reason: string } | undefined;
  /** The first session-level error (socket, TLS alert, protocol). */
  error: Error | undefined;

  private constructor(
    readonly session: ClientHttp2Session,
    readonly peerIdentity: SpiffeId,
    /** Lowercase hex. Read at the handshake: see the note in open(). */
    readonly peerSerial: string,
    readonly destination: string,
    keepalive: KeepaliveOptions | undefined,
  ) {
    session.on("error", (err) => {
      this.error ??= err;
    });
    session.on("goaway", (code: number, _last: number, data?: Buffer) => {
      this.goaway ??= { code, reason: data && data.length > 0 ? data.toString("utf8") : "" };
    });
    session.once("connect", () => widenConnectionWindow(session));
    startKeepalive(session, keepalive);
  }

  /** True while new streams may be opened on this session. */
  get usable(): boolean {
    return !this.session.closed && !this.session.destroyed && !this.goaway && !this.error;
  }

  /** Connects and verifies; aborting `signal` rejects with its reason and drops the socket. */
  static async open(opts: OpenSessionOptions, signal: AbortSignal): Promise<HboneClientSession> {
    const { host, port } = opts.destination;
    const destination = formatAuthority(host, port);
    const create = opts.createConnection ?? defaultCreateConnection;
    let tcp: Socket | undefined;
    let secure: TLSSocket | undefined;
    try {
      signal.throwIfAborted();
      tcp = create({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      if (tcp.connecting) await waitFor(tcp, "connect", signal);
      secure = connectTls({
        ...clientTlsOptions(opts.source, opts.rootsPem, opts.expectedIdentities, { destination }),
        socket: tcp,
      });
      await waitFor(secure, "secureConnect", signal);
      if (secure.alpnProtocol !== "h2") {
        throw hboneError(
          HboneErrorCode.TLS,
          `server ${destination} negotiated ALPN ${JSON.stringify(secure.alpnProtocol)}, not "h2"`,
        );
      }
      // OpenSSL and checkServerIdentity accepted it already; this only reads the ID back. It must
      // be now: once the server's TLS 1.3 NewSessionTicket arrives, Node's getPeerX509Certificate()
      // returns undefined for the rest of the connection.
      const cert = secure.getPeerX509Certificate();
      const peer = spiffeIdFromAltNames(cert?.subjectAltName);
      if (typeof peer === "string") {
        throw hboneError(HboneErrorCode.PEER_UNTRUSTED, `server certificate for ${destination} ${peer}`);
      }
      const socket = secure;
      const session = connectHttp2(`https://${destination}`, {
        createConnection: () => socket,
        settings: hboneSettings("client"),
        maxSessionMemory: MAX_SESSION_MEMORY_MB,
      });
      const serial = cert?.serialNumber.toLowerCase() ?? "";
      return new HboneClientSession(session, peer, serial, destination, opts.keepalive);
    } catch (err) {
      secure?.destroy();
      tcp?.destroy();
      throw isHboneError(err) || signal.aborted ? err : clientConnectError(err, destination);
    }
  }

  /** Sends CONNECT and resolves once the server answers 200; any other answer is a typed error. */
  request(opts: ConnectRequestOptions): Promise<HboneStream> {
    const { authority, signal } = opts;
    const what = `HBONE CONNECT to ${this.destination} (authority ${authority})`;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      let stream: ClientHttp2Stream;
      try {
        stream = this.session.request(
          { ...opts.headers, ":method": "CONNECT", ":authority": authority },
          { endStream: false },
        );
      } catch (err) {
        // The session went away (GOAWAY, destroyed) between the pool's check and this call.
        return reject(this.#failure(err, undefined, what));
      }
      stream.on("error", () => {});
      if (opts.onClose) stream.once("close", opts.onClose);
      const done = () => {
        stream.off("response", onResponse);
        stream.off("error", onError);
        stream.off("close", onClose);
        signal?.removeEventListener("abort", onAbort);
      };
      const onResponse = (headers: IncomingHttpHeaders, flags: number) => {
        done();
        const status = Number(headers[":status"]);
        if (status === 200) {
          const info: HboneStreamInfo = {
            peerIdentity: this.peerIdentity,
            peerSerial: this.peerSerial,
            destination: this.destination,
            authority,
            responseHeaders: headers,
          };
          Object.defineProperty(stream, "hbone", { value: info, enumerable: false });
          resolve(stream as HboneStream);
          return;
        }
        endRefused(stream, flags);
        reject(
          hboneError(HboneErrorCode.CONNECT_REFUSED, `${what} answered ${status}`, {
            details: { status, destination: this.destination, authority },
          }),
        );
      };
      const onError = (err: Error) => {
        done();
        reject(this.#failure(err, stream, what));
      };
      const onClose = () => {
        done();
        reject(this.#failure(undefined, stream, what));
      };
      const onAbort = () => {
        done();
        stream.close(constants.NGHTTP2_CANCEL);
        reject(signal?.reason);
      };
      stream.once("response", onResponse);
      stream.once("error", onError);
      stream.once("close", onClose);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Why a CONNECT ended without an answer. `details.retryable` marks ones the server never saw. */
  #failure(err: unknown, stream: ClientHttp2Stream | undefined, what: string): AmbientError {
    const details = { destination: this.destination };
    if (this.goaway && this.goaway.code !== constants.NGHTTP2_NO_ERROR) {
      const { code, reason } = this.goaway;
      if (code === constants.NGHTTP2_INADEQUATE_SECURITY) {
        return hboneError(
          HboneErrorCode.CERT_REJECTED,
          `server ${this.destination} refused our certificate: ${reason || "INADEQUATE_SECURITY"}`,
          { cause: err, details },
        );
      }
      return hboneError(
        HboneErrorCode.CONNECT_FAILED,
        `server ${this.destination} closed the session (GOAWAY ${h2CodeName(code)}${reason ? `: ${reason}` : ""})`,
        { cause: err, details },
      );
    }
    const sessionError = this.error;
    if (sessionError && sessionError !== err) return clientConnectError(sessionError, this.destination);
    const code = (err as { code?: string } | undefined)?.code;
    const rstCode = stream?.rstCode;
    if (code === "ERR_HTTP2_STREAM_ERROR" || (err === undefined && rstCode !== undefined)) {
      const rst = rstCode ?? constants.NGHTTP2_INTERNAL_ERROR;
      return hboneError(HboneErrorCode.STREAM_RESET, `${what} was reset (${h2CodeName(rst)})`, {
        cause: err,
        // REFUSED_STREAM promises the server did no work (RFC 9113 §8.7): safe to retry elsewhere.
        details: { ...details, rstCode: rst, retryable: rst === constants.NGHTTP2_REFUSED_STREAM },
      });
    }
    if (
      code === "ERR_HTTP2_GOAWAY_SESSION" ||
      code === "ERR_HTTP2_INVALID_SESSION" ||
      (this.goaway && err === undefined)
    ) {
      return hboneError(HboneErrorCode.STREAM_RESET, `${what} failed: the session is closing`, {
        cause: err,
        details: { ...details, retryable: true },
      });
    }
    if (err === undefined) {
      return hboneError(HboneErrorCode.STREAM_RESET, `${what} closed before an answer`, { details });
    }
    return clientConnectError(err, this.destination);
  }
}

/**
 * A refused CONNECT: the server ended its side with the answer (END_STREAM), so end ours and let
 * the stream close cleanly. Resetting it instead would send RST_STREAM, which a Node (nghttp2)
 * server counts against its rapid-reset limit: a burst of refusals could then cost the whole
 * session a GOAWAY INTERNAL_ERROR. An answer that left the stream open is cancelled.
 */
function endRefused(stream: ClientHttp2Stream, flags: number): void {
  if (stream.destroyed || stream.closed) return;
  if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
    stream.resume();
    stream.end();
    return;
  }
  stream.close(constants.NGHTTP2_CANCEL);
}

/** Resolves on `event`; rejects on 'error', on 'close' first, or with the signal's reason. */
function waitFor(emitter: Socket, event: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      emitter.off(event, onEvent);
      emitter.off("error", onError);
      emitter.off("close", onClose);
      signal.removeEventListener("abort", onAbort);
    };
    const onEvent = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(Object.assign(new Error("connection closed during the handshake"), { code: "ECONNRESET" }));
    };
    const onAbort = () => {
      cleanup();
      reject(signal.reason);
    };
    emitter.once(event, onEvent);
    emitter.once("error", onError);
    emitter.once("close", onClose);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
