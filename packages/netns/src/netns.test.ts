import { execFile, execFileSync } from "node:child_process";
import { closeSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connect, createServer, type Server, Socket, type SocketConstructorOpts } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  keepaliveOf,
  listenInNetns,
  NETNS_UNAVAILABLE,
  Netns,
  netnsAvailable,
  openNetns,
  originalDestination,
  setKeepalive,
  setMark,
  socketInNetns,
} from "./index.js";

const isRoot = process.getuid?.() === 0;
const NS = "amb-t-native-1";
const NS_PATH = `/var/run/netns/${NS}`;
const MARK = 0x539;
const run = promisify(execFile);

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function inNs(cmd: string, ...args: string[]): void {
  execFileSync("ip", ["netns", "exec", NS, cmd, ...args], { stdio: "pipe" });
}

/** Connects from a separate process inside the namespace; resolves with what the server sent. */
async function readFromInside(host: string, port: number): Promise<string> {
  const script = `const s=require("net").connect(${port},"${host}");let d="";s.on("data",c=>d+=c);s.on("close",()=>process.stdout.write(d));s.on("error",e=>{process.stdout.write("error:"+e.code);});`;
  const { stdout } = await run("ip", ["netns", "exec", NS, process.execPath, "-e", script]);
  return stdout;
}

/** What a connection from this (root-netns) process gets: the banner, or the error code. */
function readFromHere(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    let d = "";
    s.on("data", (c) => {
      d += c;
    });
    s.on("close", () => resolve(d));
    s.on("error", (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`));
    s.setTimeout(2000, () => s.destroy());
  });
}

function bannerServer(banner: string): Server {
  return createServer((s) => {
    // Tests may reset their side early.
    s.on("error", () => {});
    s.end(banner);
  });
}

function adopt(server: Server, fd: number): Promise<void> {
  return new Promise((resolve) => server.listen({ fd }, resolve));
}

/** A socket made in the namespace, connecting to host:port. */
function dialInNs(ns: Netns, host: string, port: number, mark: number): Socket {
  const fd = ns.socket(false, mark);
  const s = new Socket({ fd, manualStart: true, allowHalfOpen: true } as SocketConstructorOpts);
  return s.connect({ host, port, family: 4, autoSelectFamily: false });
}

function firstData(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let d = "";
    s.on("data", (c) => {
      d += c;
    });
    s.on("end", () => resolve(d));
    s.on("error", reject);
  });
}

describe("addon without privileges", () => {
  it("loads on Linux", () => {
    expect(netnsAvailable()).toBe(process.platform === "linux");
  });

  it("reports no original destination for a connection that was not redirected", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const accepted = new Promise<Socket>((r) => server.once("connection", r));
    const client = connect(port, "127.0.0.1");
    const socket = await accepted;
    // biome-ignore lint/suspicious/noExplicitAny: the fd is only on Node's internal handle.
    expect(originalDestination((socket as any)._handle.fd)).toBeUndefined();
    client.destroy();
    socket.destroy();
    server.close();
  });

  it("sets TCP keepalive idle time, interval and probes, and reads them back", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const client = connect(port, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    // biome-ignore lint/suspicious/noExplicitAny: the fd is only on Node's internal handle.
    const fd = (client as any)._handle.fd as number;
    setKeepalive(fd, { idleSeconds: 7, intervalSeconds: 3, probes: 4 });
    expect(keepaliveOf(fd)).toEqual({ enabled: true, idleSeconds: 7, intervalSeconds: 3, probes: 4 });
    // 0 keeps what the socket has.
    setKeepalive(fd, { idleSeconds: 0, intervalSeconds: 5, probes: 0 });
    expect(keepaliveOf(fd)).toEqual({ enabled: true, idleSeconds: 7, intervalSeconds: 5, probes: 4 });
    expect(() => setKeepalive(fd, { idleSeconds: 40_000, intervalSeconds: 0, probes: 0 })).toThrow(
      expect.objectContaining({ code: "EINVAL", syscall: "setsockopt(TCP_KEEPIDLE)" }),
    );
    client.destroy();
    server.close();
  });

  it("names the errno and the path in its errors", () => {
    expect(() => openNetns("/nonexistent/netns")).toThrow(
      expect.objectContaining({ code: "ENOENT", path: "/nonexistent/netns" }),
    );
    expect(() => setMark(1 << 20, MARK)).toThrow(
      expect.objectContaining({ code: "EBADF", syscall: "setsockopt(SO_MARK)" }),
    );
    expect(() => listenInNetns(0, "not-an-ip", 1)).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_IP_ADDRESS" }),
    );
    expect(NETNS_UNAVAILABLE).toBe("AMB_NETNS_UNAVAILABLE");
  });
});

describe.skipIf(!isRoot)("addon in a network namespace (root only: creates netns and iptables rules)", () => {
  let ns: Netns;
  const servers: Server[] = [];

  beforeAll(() => {
    try {
      ip("netns", "del", NS);
    } catch {
      // not left over from an earlier run
    }
    ip("netns", "add", NS);
    ip("-n", NS, "link", "set", "lo", "up");
    // 198.18.200.0/24 is local in the namespace: connects to it route, and REDIRECT has a target.
    ip("-n", NS, "addr", "add", "198.18.200.2/24", "dev", "lo");
    // Capture as the in-pod rules do it: .1 is always redirected, .2:8080 unless marked 0x539.
    inNs(
      "iptables",
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-p",
      "tcp",
      "-d",
      "198.18.200.1",
      "-j",
      "REDIRECT",
      "--to-ports",
      "15001",
    );
    inNs(
      "iptables",
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-p",
      "tcp",
      "-d",
      "198.18.200.2",
      "--dport",
      "8080",
      "-m",
      "mark",
      "!",
      "--mark",
      "0x539/0xfff",
      "-j",
      "REDIRECT",
      "--to-ports",
      "15001",
    );
    ns = Netns.open(NS_PATH);
  });

  afterAll(() => {
    for (const s of servers) s.close();
    ns?.close();
    // Deleting the namespace takes its iptables rules and addresses with it.
    ip("netns", "del", NS);
  });

  it("listens inside the namespace only", async () => {
    const server = bannerServer("inside");
    servers.push(server);
    await adopt(server, ns.listen("127.0.0.1", 15001));
    expect(server.address()).toMatchObject({ address: "127.0.0.1", port: 15001 });
    expect(await readFromInside("127.0.0.1", 15001)).toBe("inside");
    // The root namespace has its own 127.0.0.1: whatever answers there (usually nothing), it is not us.
    expect(await readFromHere("127.0.0.1", 15001)).not.toBe("inside");
  });

  it("reads the original destination of a redirected connection", async () => {
    const server = servers[0]!;
    const accepted = new Promise<Socket>((r) => server.once("connection", r));
    const client = dialInNs(ns, "198.18.200.1", 4321, 0);
    const socket = await accepted;
    // biome-ignore lint/suspicious/noExplicitAny: the fd is only on Node's internal handle.
    expect(originalDestination((socket as any)._handle.fd)).toEqual({ host: "198.18.200.1", port: 4321 });
    client.destroy();
  });

  it("lets a socket marked 0x539 through capture to the real target", async () => {
    const real = bannerServer("real");
    servers.push(real);
    await adopt(real, ns.listen("198.18.200.2", 8080));
    expect(await firstData(dialInNs(ns, "198.18.200.2", 8080, 0))).toBe("inside");
    expect(await firstData(dialInNs(ns, "198.18.200.2", 8080, MARK))).toBe("real");
  });

  it("sets SO_MARK on an existing socket", async () => {
    const nsFd = openNetns(NS_PATH);
    const fd = socketInNetns(nsFd, false, 0);
    closeSync(nsFd);
    setMark(fd, MARK);
    const s = new Socket({ fd, manualStart: true, allowHalfOpen: true } as SocketConstructorOpts);
    s.connect({ host: "198.18.200.2", port: 8080, family: 4, autoSelectFamily: false });
    expect(await firstData(s)).toBe("real");
  });

  it("a second listener on the same address joins the first's SO_REUSEPORT group (a ztunnel rollout)", async () => {
    const first = createServer((s) => s.end("first"));
    const second = createServer((s) => s.end("second"));
    await adopt(first, ns.listen("127.0.0.1", 15101));
    await adopt(second, ns.listen("127.0.0.1", 15101));
    // The old one closes: the new one serves every new connection.
    await new Promise<void>((r) => first.close(() => r()));
    for (let i = 0; i < 4; i++) {
      const client = dialInNs(ns, "127.0.0.1", 15101, MARK);
      expect(await firstData(client)).toBe("second");
      client.destroy();
    }
    await new Promise<void>((r) => second.close(() => r()));
  });

  it("fails with the errno name and the namespace path", async () => {
    // A port held by a socket outside our SO_REUSEPORT group (an app's plain listener).
    const holder = execFile("nsenter", [
      `--net=${NS_PATH}`,
      process.execPath,
      "-e",
      "require('net').createServer().listen(15102, '127.0.0.1', () => console.log('up'))",
    ]);
    try {
      await new Promise((resolve) => holder.stdout!.once("data", resolve));
      expect(() => ns.listen("127.0.0.1", 15102)).toThrow(
        expect.objectContaining({ code: "EADDRINUSE", syscall: "bind", path: NS_PATH }),
      );
    } finally {
      holder.kill();
    }
    // An fd that is not a namespace: setns refuses it.
    const notNs = openNetns("/dev/null");
    try {
      expect(() => socketInNetns(notNs, false, 0, "/dev/null")).toThrow(
        expect.objectContaining({ code: "EINVAL", syscall: "setns", path: "/dev/null" }),
      );
    } finally {
      closeSync(notNs);
    }
  });

  it("never moves Node's own threads out of their namespace", async () => {
    closeSync(ns.listen("127.0.0.1", 0));
    // A plain listener made after namespaced calls is still in the root namespace.
    const here = bannerServer("here");
    servers.push(here);
    await new Promise<void>((r) => here.listen(0, "127.0.0.1", r));
    const port = (here.address() as { port: number }).port;
    expect(await readFromHere("127.0.0.1", port)).toBe("here");
    // Nor does the addon's helper thread stay in a pod's namespace (it would keep it alive).
    const home = readlinkSync("/proc/self/ns/net");
    const helpers = readdirSync("/proc/self/task").filter(
      (t) => readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "ambient-netns",
    );
    expect(helpers).toHaveLength(1);
    expect(readlinkSync(`/proc/self/task/${helpers[0]}/ns/net`)).toBe(home);
  });
});
