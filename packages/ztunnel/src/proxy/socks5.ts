// The server side of SOCKS5 (RFC 1928) for ztunnel's SOCKS5 listener: no authentication, CONNECT
// only. readSocks5Request runs the greeting and reads the request; the caller routes and connects,
// then answers with sendSocks5Reply (SUCCEEDED, or the reply core's classify gives) and copies bytes.

import type { Socket } from "node:net";
import {
  AmbientError,
  ipFromBytes,
  parsePeerIp,
  Socks5ErrorCode,
  Socks5Reply,
  type Socks5ReplyCode,
} from "@ambient/core";

export interface Socks5Request {
  /** The address as the client sent it; a domain that is an IP literal is reported as that IP. */
  kind: "ipv4" | "ipv6" | "domain";
  /** Dotted IPv4, RFC 5952 IPv6 (IPv4-mapped reported as IPv4), or a lowercased domain. */
  host: string;
  port: number;
}

export interface ReadSocks5Options {
  timeoutMs?: number;
}

// Long enough for a client on a loaded node, short enough that idle half-open connections do not
// pile up; the same order as ztunnel's other handshake timeouts.
export const DEFAULT_SOCKS5_TIMEOUT_MS = 10_000;
// RFC 1928 §6: after a failure reply the server "MUST terminate the TCP connection shortly after
// sending the reply ... no more than 10 seconds". We give the client 1 s to read it and close.
const CLOSE_GRACE_MS = 1_000;

const VERSION = 0x05;
const METHOD_NO_AUTH = 0x00;
const METHOD_NONE_ACCEPTABLE = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;
// Hostname characters; anything else cannot name a mesh service or be resolved by DNS.
const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

type Phase = "greeting" | "methods" | "request" | "domain-length" | "address";

/**
 * Runs the handshake on a freshly accepted socket and resolves with the CONNECT target; the
 * caller must then send a reply. Call it before anything reads the socket: it reads exactly the
 * handshake bytes, so payload the client sent early stays in the socket for the caller's pipe.
 * On any failure the promise rejects with an AmbientError (Socks5ErrorCode), the RFC's reply is
 * sent when there is one, and the socket is closed; it never throws synchronously.
 */
export function readSocks5Request(socket: Socket, opts: ReadSocks5Options = {}): Promise<Socks5Request> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SOCKS5_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let phase: Phase = "greeting";
    let need = 2;
    let atyp = 0;
    let settled = false;

    const cleanup = () => {
      clearTimeout(timer);
      socket.off("readable", onReadable);
      socket.off("end", onEnd);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const fail = (code: string, message: string, reply?: Buffer, cause?: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      if (reply) closeAfter(socket, reply);
      else {
        socket.on("error", ignore);
        socket.destroy();
      }
      reject(new AmbientError(code, `SOCKS5: ${message}`, { details: { phase }, cause }));
    };
    const reply = (code: Socks5ReplyCode) => encodeReply(code);

    const step = (chunk: Buffer): Socks5Request | undefined => {
      switch (phase) {
        case "greeting": {
          if (chunk[0] !== VERSION) {
            fail(Socks5ErrorCode.PROTOCOL, `version ${chunk[0]} is not 5`);
            return undefined;
          }
          need = chunk[1]!;
          if (need === 0) {
            fail(
              Socks5ErrorCode.NO_ACCEPTABLE_METHOD,
              "the client offered no authentication method",
              NO_METHOD,
            );
            return undefined;
          }
          phase = "methods";
          return undefined;
        }
        case "methods": {
          if (!chunk.includes(METHOD_NO_AUTH)) {
            const offered = [...chunk].map((m) => `0x${m.toString(16).padStart(2, "0")}`).join(", ");
            fail(
              Socks5ErrorCode.NO_ACCEPTABLE_METHOD,
              `no acceptable method (offered ${offered})`,
              NO_METHOD,
            );
            return undefined;
          }
          socket.write(NO_AUTH_SELECTED);
          phase = "request";
          need = 4;
          return undefined;
        }
        case "request": {
          if (chunk[0] !== VERSION) {
            fail(Socks5ErrorCode.PROTOCOL, `request version ${chunk[0]} is not 5`);
            return undefined;
          }
          if (chunk[1] !== CMD_CONNECT) {
            fail(
              Socks5ErrorCode.COMMAND_NOT_SUPPORTED,
              `command ${chunk[1]} is not supported (only CONNECT)`,
              reply(Socks5Reply.COMMAND_NOT_SUPPORTED),
            );
            return undefined;
          }
          atyp = chunk[3]!;
          if (atyp === ATYP_IPV4) need = 4 + 2;
          else if (atyp === ATYP_IPV6) need = 16 + 2;
          else if (atyp === ATYP_DOMAIN) {
            phase = "domain-length";
            need = 1;
            return undefined;
          } else {
            fail(
              Socks5ErrorCode.ADDRESS_TYPE_NOT_SUPPORTED,
              `address type ${atyp} is not supported`,
              reply(Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED),
            );
            return undefined;
          }
          phase = "address";
          return undefined;
        }
        case "domain-length": {
          if (chunk[0] === 0) {
            fail(Socks5ErrorCode.PROTOCOL, "empty domain name", reply(Socks5Reply.GENERAL_FAILURE));
            return undefined;
          }
          need = chunk[0]! + 2;
          phase = "address";
          return undefined;
        }
        case "address": {
          const port = chunk.readUInt16BE(chunk.length - 2);
          const host = chunk.subarray(0, chunk.length - 2);
          if (atyp === ATYP_IPV4) return { kind: "ipv4", host: host.join("."), port };
          if (atyp === ATYP_IPV6) return { port, ...ipv6Host(host) };
          const target = domainHost(host.toString("latin1"));
          if (!target) {
            fail(Socks5ErrorCode.PROTOCOL, "malformed domain name", reply(Socks5Reply.HOST_UNREACHABLE));
            return undefined;
          }
          return { port, ...target };
        }
      }
    };

    // `read(n)` hands out exactly n bytes (or null until they have arrived), so a request split
    // across segments waits, and bytes after the request stay buffered in the socket.
    const onReadable = () => {
      while (!settled) {
        const chunk = socket.read(need) as Buffer | null;
        if (chunk === null) return;
        if (chunk.length < need) {
          // The stream ended: read() hands out what is left.
          fail(
            Socks5ErrorCode.CLOSED,
            `connection closed after a partial ${phase} (${chunk.length} of ${need} bytes)`,
          );
          return;
        }
        const request = step(chunk);
        if (request && !settled) {
          settled = true;
          cleanup();
          resolve(request);
          return;
        }
      }
    };
    const onEnd = () => fail(Socks5ErrorCode.CLOSED, `connection closed during the ${phase}`);
    const onClose = () => fail(Socks5ErrorCode.CLOSED, `connection closed during the ${phase}`);
    const onError = (err: Error) =>
      fail(Socks5ErrorCode.CLOSED, `connection failed during the ${phase}`, undefined, err);
    const timer = setTimeout(
      () =>
        fail(Socks5ErrorCode.TIMEOUT, `no complete request within ${timeoutMs} ms (stuck in the ${phase})`),
      timeoutMs,
    );

    socket.on("readable", onReadable);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.on("close", onClose);
    if (socket.destroyed) onClose();
    else onReadable();
  });
}

/**
 * Answers the request. SUCCEEDED leaves the connection open for data; any other code closes it
 * shortly after, as RFC 1928 §6 requires. `bound` is the address the server connected from; most
 * clients ignore it, so 0.0.0.0:0 is the default, as ztunnel sends.
 */
export function sendSocks5Reply(
  socket: Socket,
  code: Socks5ReplyCode,
  bound?: { host: string; port: number },
): void {
  if (socket.destroyed) return;
  const bytes = encodeReply(code, bound);
  if (code === Socks5Reply.SUCCEEDED) socket.write(bytes);
  else closeAfter(socket, bytes);
}

// ---- wire helpers ----

const NO_AUTH_SELECTED = Buffer.from([VERSION, METHOD_NO_AUTH]);
const NO_METHOD = Buffer.from([VERSION, METHOD_NONE_ACCEPTABLE]);

function encodeReply(code: Socks5ReplyCode, bound?: { host: string; port: number }): Buffer {
  const port =
    bound && Number.isInteger(bound.port) && bound.port >= 0 && bound.port <= 0xffff ? bound.port : 0;
  let atyp = ATYP_IPV4;
  let addr: Buffer = Buffer.alloc(4);
  const ip = bound ? parsePeerIp(bound.host) : undefined;
  if (ip) {
    atyp = ip.length === 4 ? ATYP_IPV4 : ATYP_IPV6;
    addr = Buffer.from(ip);
  } else if (bound?.host && Buffer.byteLength(bound.host, "latin1") <= 255) {
    atyp = ATYP_DOMAIN;
    const name = Buffer.from(bound.host, "latin1");
    addr = Buffer.concat([Buffer.from([name.length]), name]);
  }
  const out = Buffer.alloc(4 + addr.length + 2);
  out[0] = VERSION;
  out[1] = code;
  out[2] = 0x00; // RSV
  out[3] = atyp;
  addr.copy(out, 4);
  out.writeUInt16BE(port, 4 + addr.length);
  return out;
}

function ipv6Host(bytes: Buffer): Pick<Socks5Request, "kind" | "host"> {
  // A dual-stack client may send an IPv4 destination as ::ffff:a.b.c.d: ipFromBytes unwraps it, and
  // it is routed as IPv4.
  const host = ipFromBytes(bytes) ?? "";
  return { kind: host.includes(":") ? "ipv6" : "ipv4", host };
}

/**
 * A domain as a lowercased hostname without its trailing dot (the mesh's service names are
 * written that way), or the IP it spells (some clients send literals as domains).
 */
function domainHost(raw: string): Pick<Socks5Request, "kind" | "host"> | undefined {
  const literal = raw.includes("%") ? undefined : parsePeerIp(raw);
  if (literal) {
    return literal.length === 4
      ? { kind: "ipv4", host: ipFromBytes(literal)! }
      : ipv6Host(Buffer.from(literal));
  }
  const name = (raw.endsWith(".") ? raw.slice(0, -1) : raw).toLowerCase();
  return HOSTNAME.test(name) ? { kind: "domain", host: name } : undefined;
}

/** Sends `bytes` and closes: FIN now, and a hard close if the client has not closed in time. */
function closeAfter(socket: Socket, bytes: Buffer): void {
  socket.on("error", ignore);
  if (socket.destroyed) return;
  // Keep reading (and dropping) so the client's unread bytes do not turn our close into a reset
  // that could discard the reply before the client reads it.
  socket.resume();
  socket.end(bytes);
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

function ignore(): void {}
