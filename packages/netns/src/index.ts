// Sockets inside another network namespace, SO_MARK and SO_ORIGINAL_DST for ztunnel's in-pod
// mode, and TCP keepalive interval/probes (which Node cannot set), over a small N-API addon (src/netns.c, built by node-gyp on install). The addon is loaded
// on first use, so importing this package where it was not built (macOS, a failed build) only
// fails when a namespaced socket is actually asked for.

import { closeSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { getSystemErrorName } from "node:util";

/** The addon is missing or cannot load here (not Linux, or `node-gyp rebuild` did not run). */
export const NETNS_UNAVAILABLE = "AMB_NETNS_UNAVAILABLE";

/**
 * A failed system call. `code` is the errno name (`ENOENT`, `EPERM`, `EADDRINUSE`...), as in Node's
 * own socket errors, so callers classify both the same way; `path` names the namespace involved.
 */
export class NetnsError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;

  constructor(
    code: string,
    message: string,
    fields: { errno?: number; syscall?: string; path?: string; cause?: unknown } = {},
  ) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = "NetnsError";
    this.code = code;
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    this.path = fields.path;
  }
}

interface Addon {
  listenInNetns(
    nsFd: number,
    host: string,
    port: number,
    backlog: number,
    ipv6: boolean,
    udp?: boolean,
  ): number;
  socketInNetns(nsFd: number, ipv6: boolean, mark: number): number;
  setMark(fd: number, mark: number): void;
  originalDestination(fd: number): { host: string; port: number } | undefined;
  setKeepalive(fd: number, idleSeconds: number, intervalSeconds: number, probes: number): void;
  keepalive(fd: number): TcpKeepalive;
}

/** A socket's TCP keepalive settings, in the kernel's units. */
export interface TcpKeepalive {
  enabled: boolean;
  idleSeconds: number;
  intervalSeconds: number;
  probes: number;
}

// Relative to src/ and to dist/ alike: both sit one level below the package root.
const ADDON_PATH = "../build/Release/netns.node";
let addon: Addon | undefined;
let loadError: NetnsError | undefined;

function load(): Addon {
  if (addon) return addon;
  if (loadError) throw loadError;
  if (process.platform !== "linux") {
    loadError = new NetnsError(
      NETNS_UNAVAILABLE,
      `@ambient/netns needs Linux (network namespaces); this is ${process.platform}`,
    );
    throw loadError;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    return addon;
  } catch (err) {
    loadError = new NetnsError(
      NETNS_UNAVAILABLE,
      `@ambient/netns: native addon ${new URL(ADDON_PATH, import.meta.url).pathname} did not load ` +
        `(run \`pnpm install\` or \`node-gyp rebuild\` in packages/netns; needs python3, make and a C compiler): ` +
        (err instanceof Error ? err.message : String(err)),
      { cause: err },
    );
    throw loadError;
  }
}

/** True when the addon loads: namespaced sockets, SO_MARK and SO_ORIGINAL_DST are usable. */
export function netnsAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/** Runs an addon call, turning its errno failures into NetnsError with `what` and `path` in the message. */
function call<T>(what: string, path: string | undefined, fn: (a: Addon) => T): T {
  const a = load();
  try {
    return fn(a);
  } catch (err) {
    const { errno, syscall } = err as { errno?: unknown; syscall?: unknown };
    if (typeof errno !== "number" || typeof syscall !== "string") throw err;
    const code = getSystemErrorName(-errno);
    const where = path === undefined ? "" : ` in netns ${path}`;
    throw new NetnsError(code, `${what}${where}: ${syscall}: ${code} (${(err as Error).message})`, {
      errno,
      syscall,
      path,
      cause: err,
    });
  }
}

function family(host: string): boolean {
  const version = isIP(host);
  if (version === 0) throw new NetnsError("ERR_INVALID_IP_ADDRESS", `not an IP address: ${host}`);
  return version === 6;
}

/** Opens a network namespace (e.g. /var/run/netns/NAME or /proc/PID/ns/net) for the calls below. */
export function openNetns(path: string): number {
  try {
    // Node opens with O_CLOEXEC: children never inherit it.
    return openSync(path, "r");
  } catch (err) {
    const code = (err as { code?: string }).code ?? "EIO";
    throw new NetnsError(code, `open netns ${path}: ${code}`, { path, syscall: "open", cause: err });
  }
}

/**
 * A TCP socket bound and listening on host:port inside the namespace `nsFd`; returns its fd
 * (non-blocking, CLOEXEC, SO_REUSEADDR, SO_REUSEPORT), ready for `server.listen({ fd })`.
 */
export function listenInNetns(
  nsFd: number,
  host: string,
  port: number,
  backlog = 511,
  path?: string,
): number {
  const ipv6 = family(host);
  return call(`listen on ${host}:${port}`, path, (a) => a.listenInNetns(nsFd, host, port, backlog, ipv6));
}

/**
 * A UDP socket bound on host:port inside the namespace `nsFd`; returns its fd (non-blocking,
 * CLOEXEC, SO_REUSEADDR, SO_REUSEPORT), ready for `dgramSocket.bind({ fd })`.
 */
export function bindUdpInNetns(nsFd: number, host: string, port: number, path?: string): number {
  const ipv6 = family(host);
  return call(`bind UDP ${host}:${port}`, path, (a) => a.listenInNetns(nsFd, host, port, 0, ipv6, true));
}

/**
 * An unconnected TCP socket (non-blocking, CLOEXEC) created inside the namespace `nsFd`, with
 * SO_MARK = `mark` unless 0; hand it to `new net.Socket({ fd })` and connect.
 */
export function socketInNetns(nsFd: number, ipv6: boolean, mark: number, path?: string): number {
  return call("create socket", path, (a) => a.socketInNetns(nsFd, ipv6, mark));
}

/** Sets SO_MARK on a socket (needs CAP_NET_ADMIN). */
export function setMark(fd: number, mark: number): void {
  call(`set mark 0x${mark.toString(16)}`, undefined, (a) => a.setMark(fd, mark));
}

/**
 * Where a REDIRECTed connection was originally going (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST);
 * undefined when conntrack has no NAT for it (it was not redirected).
 */
export function originalDestination(fd: number): { host: string; port: number } | undefined {
  return call("read original destination", undefined, (a) => a.originalDestination(fd));
}

/**
 * SO_KEEPALIVE on, with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT for each value > 0 (0 keeps the
 * kernel's: net.ipv4.tcp_keepalive_time 7200 s, _intvl 75 s, _probes 9). Node's setKeepAlive sets
 * only the idle time (libuv before 1.48 leaves the other two alone).
 */
export function setKeepalive(
  fd: number,
  opts: { idleSeconds: number; intervalSeconds: number; probes: number },
): void {
  call("set TCP keepalive", undefined, (a) =>
    a.setKeepalive(fd, opts.idleSeconds, opts.intervalSeconds, opts.probes),
  );
}

/** What the kernel holds for a socket's keepalive. */
export function keepaliveOf(fd: number): TcpKeepalive {
  return call("read TCP keepalive", undefined, (a) => a.keepalive(fd));
}

/** An open network namespace: its fd stays open (and the namespace alive) until `close()`. */
export class Netns {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  static open(path: string): Netns {
    return new Netns(path, openNetns(path));
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  listen(host: string, port: number, backlog = 511): number {
    return listenInNetns(this.handle(), host, port, backlog, this.path);
  }

  bindUdp(host: string, port: number): number {
    return bindUdpInNetns(this.handle(), host, port, this.path);
  }

  socket(ipv6: boolean, mark: number): number {
    return socketInNetns(this.handle(), ipv6, mark, this.path);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private handle(): number {
    if (this.fd < 0) throw new NetnsError("EBADF", `netns ${this.path} is closed`, { path: this.path });
    return this.fd;
  }
}
