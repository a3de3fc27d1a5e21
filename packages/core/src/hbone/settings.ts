// HTTP/2 tuning shared by the HBONE client and server, and the PING keepalive both run. The numbers
// are Istio ztunnel's: HBONE streams carry bulk TCP, so windows are sized for throughput rather than
// for many small requests as HTTP/2's defaults are.

import type { Http2Session, Settings } from "node:http2";
import { HboneErrorCode, hboneError } from "./errors.js";

const MiB = 1024 * 1024;

/** Per-stream receive window (ztunnel: 4 MiB; HTTP/2 default 64 KiB caps a stream at ~64 KiB/RTT). */
export const STREAM_WINDOW_BYTES = 4 * MiB;
/** Whole-connection receive window (ztunnel: 16 MiB), shared by up to 100 streams. */
export const CONNECTION_WINDOW_BYTES = 16 * MiB;
/** Largest DATA frame we accept (ztunnel: 1 MiB; HTTP/2 default 16 KiB means more frames per byte). */
export const MAX_FRAME_BYTES = 1 * MiB;
/**
 * SETTINGS_MAX_CONCURRENT_STREAMS the server advertises. Our clients open another session at 100
 * (DESIGN §4), but Istio's ztunnel and waypoints may push more; 1000 bounds a misbehaving peer without
 * ever being the limit a well-behaved one meets. Go: 250, Hyper: 200 by default. nghttp2 treats a
 * stream past it as a connection error (measured on Node 20: the session and its good streams die),
 * so the server refuses streams itself before nghttp2's count gets there (STREAM_REFUSAL_RESERVE).
 */
export const SERVER_MAX_CONCURRENT_STREAMS = 1000;
/**
 * The server answers REFUSED_STREAM (safe to retry: nothing was processed) to a new stream once this
 * many short of the advertised limit are open. A stream it refuses stays in nghttp2's count until the
 * RST_STREAM is written, after the read that carried it: the reserve absorbs that many excess streams
 * in one read before nghttp2's own limit, and its session-wide PROTOCOL_ERROR, is reached.
 */
export const STREAM_REFUSAL_RESERVE = 100;
/**
 * SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2 counting: name + value + 32 per field). A CONNECT
 * carries :authority, forwarded, baggage and traceparent, well under 1 KiB. Node enforces the value it
 * advertises by resetting the stream (ENHANCE_YOUR_CALM) and, without it, accepted 100 KiB blocks
 * (measured); Envoy accepts 60 KiB of request headers, Go's net/http 1 MiB.
 */
export const MAX_HEADER_LIST_BYTES = 16 * 1024;
/**
 * Bound on a client's TLS handshake, and then on its first CONNECT. Node's TLS default is 120 s,
 * nginx's ssl_handshake_timeout 60 s, Envoy's listener_filters_timeout 15 s, Linkerd's protocol
 * detection 10 s: a peer ztunnel handshakes in milliseconds, so 10 s only ever cuts off stalled clients.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * A session with no open stream for this long is closed (GOAWAY NO_ERROR). Envoy's HTTP connection
 * idle_timeout default is 1 h; our client pool lets idle sessions go after 5 min (pool.ts) anyway.
 */
export const SERVER_IDLE_TIMEOUT_MS = 60 * 60_000;
/**
 * Rapid reset (CVE-2023-44487), as Envoy counts it: streams the client reset before our answer, plus
 * streams we had to refuse, are "wasted"; a session is closed once they reach half of its streams,
 * judged over at least this many (so 250 wasted streams close a young session). nghttp2's own budget
 * (Node's streamResetBurst 1000, then streamResetRate 33/s) stays beneath as a backstop: past it
 * nghttp2 sends GOAWAY INTERNAL_ERROR and Node reports nothing, so ours must trip first.
 */
export const RESET_FLOOD_WINDOW = 500;
/** Streams per client session before the pool opens another connection (ztunnel: 100). */
export const CLIENT_MAX_STREAMS_PER_SESSION = 100;
/**
 * Node's default (10 MB) counts buffered DATA: with a 16 MiB connection window a fast sender can
 * exceed it and nghttp2 then refuses new streams with ENHANCE_YOUR_CALM. The window bounds real use.
 */
export const MAX_SESSION_MEMORY_MB = 64;
/** ztunnel pings every 10 s and drops the connection when an answer takes over 20 s. */
export const KEEPALIVE_INTERVAL_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;

/** SETTINGS both sides send. Push is meaningless for CONNECT tunnels. */
export function hboneSettings(role: "client" | "server"): Settings {
  const settings: Settings = {
    initialWindowSize: STREAM_WINDOW_BYTES,
    maxFrameSize: MAX_FRAME_BYTES,
  };
  if (role === "server") {
    settings.maxConcurrentStreams = SERVER_MAX_CONCURRENT_STREAMS;
    settings.maxHeaderListSize = MAX_HEADER_LIST_BYTES;
  } else settings.enablePush = false;
  return settings;
}

export interface KeepaliveOptions {
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * Widens the connection window once the session has a native handle (the SETTINGS above only set
 * per-stream windows; the connection window is a WINDOW_UPDATE on stream 0).
 */
export function widenConnectionWindow(session: Http2Session): void {
  try {
    if (!session.destroyed) session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
  } catch {
    // The session closed between the check and the call: nothing to widen.
  }
}

/**
 * PINGs the peer every `intervalMs`; a PING unanswered after `timeoutMs` destroys the session with
 * a TIMEOUT error, so a silently dead peer (a pod gone without FIN) frees its streams. Node has no
 * built-in HTTP/2 keepalive. Stops by itself when the session closes.
 */
export function startKeepalive(session: Http2Session, opts: KeepaliveOptions = {}): void {
  const intervalMs = opts.intervalMs ?? KEEPALIVE_INTERVAL_MS;
  const timeoutMs = opts.timeoutMs ?? KEEPALIVE_TIMEOUT_MS;
  if (intervalMs <= 0) return;
  const pending = new Set<NodeJS.Timeout>();
  const interval = setInterval(() => {
    if (session.destroyed || session.closed) return stop();
    const deadline = setTimeout(() => {
      pending.delete(deadline);
      if (session.destroyed) return;
      session.destroy(
        hboneError(HboneErrorCode.TIMEOUT, `HTTP/2 PING to the peer unanswered after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    deadline.unref();
    pending.add(deadline);
    let sent = false;
    try {
      sent = session.ping((err) => {
        // Node calls back with an error when the session closes first: the close handler cleans up.
        if (!err) {
          clearTimeout(deadline);
          pending.delete(deadline);
        }
      });
    } catch {
      // ping() throws once the session is closing.
    }
    if (!sent) {
      // Too many PINGs outstanding (Node caps them): the deadline of the oldest still runs.
      clearTimeout(deadline);
      pending.delete(deadline);
    }
  }, intervalMs);
  interval.unref();
  const stop = () => {
    clearInterval(interval);
    for (const t of pending) clearTimeout(t);
    pending.clear();
  };
  session.once("close", stop);
}
