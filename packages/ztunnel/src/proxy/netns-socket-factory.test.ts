import { execFile, execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { promisify } from "node:util";
import { Netns } from "@ambient/netns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inPodListenHost, NetnsSocketFactory, ZTUNNEL_MARK } from "./netns-socket-factory.js";
import type { PodRef } from "./socket-factory.js";

const isRoot = process.getuid?.() === 0;
const NS = "amb-t-native-2";
const run = promisify(execFile);

const pod: PodRef = {
  uid: "uid-1",
  name: "client",
  namespace: "default",
  ip: "198.18.201.2",
  netns: `/var/run/netns/${NS}`,
};

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function iptables(...args: string[]): void {
  execFileSync("ip", ["netns", "exec", NS, "iptables", ...args], { stdio: "pipe" });
}

/** A server that answers each line with "<name>:<line>" and half-closes when the client does. */
function echo(name: string): Server {
  return createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    s.on("data", (d) => s.write(`${name}:${d}`));
    s.on("end", () => s.end());
  });
}

/** Sends `text`, half-closes, and collects the answer until the peer closes. */
function exchange(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    socket.on("data", (d) => {
      got += d;
    });
    socket.on("end", () => resolve(got));
    socket.on("error", reject);
    socket.write(text);
    socket.end();
  });
}

function failure(socket: Socket): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => {
    socket.on("connect", () => reject(new Error("connected")));
    socket.on("error", resolve);
  });
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("in-pod listener hosts", () => {
  it("binds inbound ports on every address and the rest on loopback", () => {
    expect(inPodListenHost(15006)).toBe("0.0.0.0");
    expect(inPodListenHost(15008)).toBe("0.0.0.0");
    expect(inPodListenHost(15001)).toBe("127.0.0.1");
    expect(inPodListenHost(15080)).toBe("127.0.0.1");
    expect(inPodListenHost(15008, true)).toBe("::");
    expect(inPodListenHost(15001, true)).toBe("::1");
  });
});

describe.skipIf(!isRoot)("NetnsSocketFactory (root only: creates a netns and iptables rules)", () => {
  const factory = new NetnsSocketFactory();
  const servers: Server[] = [];

  async function listen(server: Server, port: number): Promise<Server> {
    servers.push(server);
    await factory.listen(server, pod, port);
    return server;
  }

  beforeAll(() => {
    try {
      ip("netns", "del", NS);
    } catch {
      // not left over from an earlier run
    }
    ip("netns", "add", NS);
    ip("-n", NS, "link", "set", "lo", "up");
    // The "pod IP" and a local /24 around it, so captured destinations route.
    ip("-n", NS, "addr", "add", `${pod.ip}/24`, "dev", "lo");
    // Outbound capture as the in-pod rules do it (ztunnel's own sockets are marked and skip it).
    iptables(
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-p",
      "tcp",
      "-d",
      "198.18.201.0/24",
      "!",
      "--dport",
      "15000:15100",
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
    // Nothing ever answers 198.18.201.99:9: connects to it hang until a timeout.
    iptables("-A", "OUTPUT", "-p", "tcp", "-d", "198.18.201.99", "--dport", "9", "-j", "DROP");
  });

  afterAll(() => {
    for (const s of servers) s.close();
    factory.close();
    // The namespace takes its rules and addresses with it.
    ip("netns", "del", NS);
  });

  it("opens the pod's listeners inside its netns, on the in-pod hosts", async () => {
    const outbound = await listen(echo("outbound"), 15001);
    const hbone = await listen(echo("hbone"), 15008);
    expect(outbound.address()).toMatchObject({ address: "127.0.0.1", port: 15001 });
    expect(hbone.address()).toMatchObject({ address: "0.0.0.0", port: 15008 });
    // Reached from a process inside the pod's netns, on the pod IP.
    const script = `const s=require("net").connect(15008,"${pod.ip}");let d="";s.on("data",c=>d+=c);s.on("end",()=>process.stdout.write(d));s.end("hi");`;
    const { stdout } = await run("ip", ["netns", "exec", NS, process.execPath, "-e", script]);
    expect(stdout).toBe("hbone:hi");
  });

  it("connects from inside the pod, data flowing both ways, marked so capture lets it through", async () => {
    // The pod's app, on every address of the pod's netns.
    const app = echo("app");
    servers.push(app);
    const ns = Netns.open(pod.netns!);
    await new Promise<void>((r) => app.listen({ fd: ns.listen("0.0.0.0", 8080) }, r));
    ns.close();
    const socket = factory.connect(pod, { host: "127.0.0.1", port: 8080 });
    expect(socket.connecting).toBe(true);
    expect(await exchange(socket, "ping")).toBe("app:ping");

    // 198.18.201.5:8080 is captured for the pod's processes; ztunnel's mark goes straight through.
    expect(await exchange(factory.connectToApp(pod, { host: "198.18.201.5", port: 8080 }), "x")).toBe(
      "app:x",
    );
    const unmarked = new NetnsSocketFactory({ mark: 0 });
    try {
      expect(await exchange(unmarked.connect(pod, { host: "198.18.201.5", port: 8080 }), "y")).toBe(
        "outbound:y",
      );
    } finally {
      unmarked.close();
    }
    expect(ZTUNNEL_MARK).toBe(0x539);
  });

  it("reads the original destination of a captured connection", async () => {
    const outbound = servers[0]!;
    const accepted = new Promise<Socket>((r) => outbound.once("connection", r));
    const unmarked = new NetnsSocketFactory({ mark: 0 });
    const client = unmarked.connect(pod, { host: "198.18.201.7", port: 4321 });
    const socket = await accepted;
    expect(factory.originalDestination(socket)).toEqual({ host: "198.18.201.7", port: 4321 });
    client.destroy();
    unmarked.close();
  });

  it("surfaces connect errors and timeouts on the socket", async () => {
    const refused = await failure(factory.connect(pod, { host: "127.0.0.1", port: 1 }));
    expect(refused.code).toBe("ECONNREFUSED");

    const hanging = factory.connect(pod, { host: "198.18.201.99", port: 9 });
    // The socket's idle timer fires while the connect is still pending: nothing answers there.
    await new Promise<void>((resolve) => hanging.setTimeout(200, resolve));
    expect(hanging.connecting).toBe(true);
    hanging.destroy();

    const gone = { ...pod, uid: "uid-gone", netns: "/var/run/netns/amb-t-native-missing" };
    expect((await failure(factory.connect(gone, { host: "127.0.0.1", port: 8080 }))).code).toBe("ENOENT");
    await expect(factory.listen(echo("x"), gone, 15001)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("dials from the node when there is no pod or it has no netns", async () => {
    const here = echo("node");
    servers.push(here);
    await new Promise<void>((r) => here.listen(0, "127.0.0.1", r));
    const port = (here.address() as { port: number }).port;
    expect(await exchange(factory.connect(undefined, { host: "127.0.0.1", port }), "a")).toBe("node:a");
    const hostPod = { ...pod, uid: "uid-host", netns: undefined };
    expect(await exchange(factory.connect(hostPod, { host: "127.0.0.1", port }), "b")).toBe("node:b");
    await expect(factory.listen(echo("x"), hostPod, 15001)).rejects.toMatchObject({
      code: "AMB_LISTEN_FAILED",
    });
  });

  it("keeps one netns fd per pod and closes it on release", async () => {
    const other = { ...pod, uid: "uid-other" };
    const before = openFds();
    for (let i = 0; i < 3; i++) factory.connect(other, { host: "127.0.0.1", port: 8080 }).destroy();
    await new Promise((r) => setImmediate(r));
    expect(openFds()).toBe(before + 1);
    factory.release(other);
    expect(openFds()).toBe(before);
    // Still usable afterwards: the namespace is reopened on demand.
    expect(await exchange(factory.connect(other, { host: "127.0.0.1", port: 8080 }), "z")).toBe("app:z");
    factory.release(other);
  });
});
