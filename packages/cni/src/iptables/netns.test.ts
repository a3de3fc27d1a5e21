// The rules on real network namespaces, proven with real connections: a "host" and a "pod" netns
// joined by a veth, small node servers and clients spawned inside each through nsenter.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IptablesErrorCode } from "./errors.js";
import { applyHostProbeRules, removeHostProbeRules } from "./host-probe.js";
import { applyInPodRules, removeInPodRules } from "./in-pod.js";
import { countRules, saveRules } from "./reconcile.js";
import { type Family, IN_POD_OWNED, inPodRules } from "./rules.js";
import { ownedLines, parseSave } from "./save.js";

const isRoot = process.getuid?.() === 0;
const HOST = "amb-t-ipt-host";
const POD = "amb-t-ipt-pod";
const HOST_NS = `/var/run/netns/${HOST}`;
const POD_NS = `/var/run/netns/${POD}`;
const HOST_IP = "198.18.210.1";
const POD_IP = "198.18.210.2";
const HOST_IP6 = "fd00:210::1";
const POD_IP6 = "fd00:210::2";
const PROBE = "169.254.7.127";
const REQUEST_TIMEOUT_MS = 6_000;

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", timeout: 10_000 });
}

function inNs(ns: string, ...argv: string[]): string {
  return execFileSync("nsenter", [`--net=${ns}`, ...argv], { encoding: "utf8", timeout: 10_000 });
}

function deleteNetns(name: string): void {
  try {
    execFileSync("ip", ["netns", "del", name], { stdio: "pipe", timeout: 10_000 });
  } catch {
    // not there
  }
}

// Runs inside a netns: listeners that answer with their tag and the addresses they saw, and a
// client that connects on request and reports the answer.
const NODE_HELPER = `
const net = require("node:net");
process.on("message", (m) => {
  const reply = (r) => process.send({ id: m.id, ...r });
  if (m.op === "listen") {
    const s = net.createServer((sock) => {
      sock.on("error", () => {});
      sock.end(JSON.stringify({ tag: m.tag, localPort: sock.localPort, remoteAddress: sock.remoteAddress }));
    });
    s.once("error", (e) => reply({ error: e.code || e.message }));
    s.listen({ host: m.host, port: m.port, ipv6Only: false }, () => reply({ ok: true }));
  } else if (m.op === "connect") {
    let done = false;
    let buf = "";
    const sock = net.connect({ host: m.host, port: m.port, localAddress: m.localAddress });
    const finish = (r) => { if (!done) { done = true; sock.destroy(); reply(r); } };
    sock.setTimeout(3000, () => finish({ error: "timeout" }));
    sock.setEncoding("utf8");
    sock.on("data", (d) => { buf += d; });
    sock.on("end", () => { try { finish({ reply: JSON.parse(buf) }); } catch { finish({ error: "bad reply " + buf }); } });
    sock.on("error", (e) => finish({ error: e.code || e.message }));
  }
});
process.on("disconnect", () => process.exit(0));
process.send({ ready: true });
`;

interface Answer {
  tag: string;
  localPort: number;
  remoteAddress: string;
}

/** A node process inside a netns, driven over IPC; every request is bounded by a timeout. */
class NetnsNode {
  private nextId = 1;
  private readonly pending = new Map<number, (m: Record<string, unknown>) => void>();

  private constructor(readonly child: ChildProcess) {
    child.on("message", (m: Record<string, unknown>) => this.pending.get(m.id as number)?.(m));
    child.on("exit", () => {
      for (const done of this.pending.values()) done({ error: "helper exited" });
    });
  }

  static start(netns: string): Promise<NetnsNode> {
    const child = spawn("nsenter", [`--net=${netns}`, process.execPath, "-e", NODE_HELPER], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`helper in ${netns} did not start`)),
        REQUEST_TIMEOUT_MS,
      );
      child.once("error", reject);
      child.once("message", () => {
        clearTimeout(timer);
        resolve(new NetnsNode(child));
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private request(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${JSON.stringify(msg)}`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(m);
      });
      this.child.send({ ...msg, id });
    });
  }

  async listen(host: string, port: number, tag: string): Promise<void> {
    const r = await this.request({ op: "listen", host, port, tag });
    if (r.error) throw new Error(`listen ${host}:${port}: ${r.error}`);
  }

  /** Who answered a connection to host:port (optionally from localAddress). */
  async connect(host: string, port: number, localAddress?: string): Promise<Answer> {
    const r = await this.request({ op: "connect", host, port, localAddress });
    if (r.error) throw new Error(`connect ${host}:${port}: ${r.error}`);
    return r.reply as Answer;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

/** Our lines in the saved state, by table, sorted: what iptables-save shows of ours. */
async function oursInPod(family: Family): Promise<Record<string, string[]>> {
  const saved = parseSave(await saveRules(POD_NS, { family }));
  const out: Record<string, string[]> = {};
  for (const { table, chains } of IN_POD_OWNED) out[table] = ownedLines(saved.get(table), chains).sort();
  return out;
}

function wantedInPod(family: Family, dnsCapture = false): Record<string, string[]> {
  return Object.fromEntries(
    inPodRules(family, { dnsCapture }).tables.map((t) => [t.table, [...t.rules].sort()]),
  );
}

describe.skipIf(!isRoot)("iptables rules on real network namespaces (needs root; skipped otherwise)", () => {
  let host: NetnsNode | undefined;
  let pod: NetnsNode | undefined;

  beforeAll(async () => {
    deleteNetns(HOST);
    deleteNetns(POD);
    ip("netns", "add", HOST);
    ip("netns", "add", POD);
    ip("-n", HOST, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", POD);
    for (const [ns, v4, v6] of [
      [HOST, HOST_IP, HOST_IP6],
      [POD, POD_IP, POD_IP6],
    ] as const) {
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "addr", "add", `${v4}/24`, "dev", "eth0");
      ip("-n", ns, "-6", "addr", "add", `${v6}/64`, "dev", "eth0", "nodad");
      ip("-n", ns, "link", "set", "eth0", "up");
    }
    // Replies to the probe address go back to the "node", as they would via the pod's gateway.
    ip("-n", POD, "route", "add", "default", "via", HOST_IP);
    ip("-n", HOST, "addr", "add", `${PROBE}/32`, "dev", "lo");

    host = await NetnsNode.start(HOST_NS);
    pod = await NetnsNode.start(POD_NS);
    await host.listen(HOST_IP, 80, "host:80");
    await host.listen(HOST_IP6, 80, "host:80");
    await pod.listen("127.0.0.1", 15001, "pod:15001");
    await pod.listen("::1", 15001, "pod:15001");
    for (const port of [15006, 15008, 8080]) await pod.listen("::", port, `pod:${port}`);
  });

  afterAll(() => {
    host?.stop();
    pod?.stop();
    deleteNetns(HOST);
    deleteNetns(POD);
  });

  it("without rules, traffic goes direct (the baseline the redirects are measured against)", async () => {
    expect((await pod!.connect(HOST_IP, 80)).tag).toBe("host:80");
    expect((await host!.connect(POD_IP, 8080)).tag).toBe("pod:8080");
  });

  let foreignOnly = "";

  it("apply: writes exactly our rules, removes stale ones of ours, keeps foreign ones", async () => {
    inNs(POD_NS, "iptables", "-t", "nat", "-A", "OUTPUT", "-d", "203.0.113.7/32", "-j", "RETURN");
    inNs(POD_NS, "iptables", "-t", "mangle", "-N", "FOREIGN");
    inNs(POD_NS, "iptables", "-t", "mangle", "-A", "FOREIGN", "-j", "RETURN");
    foreignOnly = await saveRules(POD_NS);
    // Left over by an older agent: a stale rule in our chain and a duplicated jump.
    inNs(POD_NS, "iptables", "-t", "nat", "-N", "AMBIENT_OUTPUT");
    inNs(POD_NS, "iptables", "-t", "nat", "-A", "AMBIENT_OUTPUT", "-d", "203.0.113.9/32", "-j", "ACCEPT");
    inNs(POD_NS, "iptables", "-t", "nat", "-A", "OUTPUT", "-j", "AMBIENT_OUTPUT");
    inNs(POD_NS, "iptables", "-t", "nat", "-A", "OUTPUT", "-j", "AMBIENT_OUTPUT");

    expect(await applyInPodRules(POD_NS, { ipv6: true })).toEqual({ changed: true });

    const saved = await saveRules(POD_NS);
    expect(saved).toContain("-A OUTPUT -d 203.0.113.7/32 -j RETURN");
    expect(saved).toContain("-A FOREIGN -j RETURN");
    expect(saved).not.toContain("203.0.113.9");
    expect(saved).toContain("-m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001");
    // iptables-save prints our rules exactly as we write them: that is what makes re-apply a no-op.
    expect(await oursInPod("ipv4")).toEqual(wantedInPod("ipv4"));
    expect(await oursInPod("ipv6")).toEqual(wantedInPod("ipv6"));
    expect(ip("-n", POD, "rule", "show")).toContain("fwmark 0x111/0xfff lookup 100");
    expect(ip("-n", POD, "-6", "rule", "show")).toContain("fwmark 0x111/0xfff lookup 100");
    expect(ip("-n", POD, "route", "show", "table", "100")).toContain("local default dev lo");
  });

  it("apply again (an agent restart): nothing changes, nothing is duplicated", async () => {
    const before4 = await saveRules(POD_NS);
    const before6 = await saveRules(POD_NS, { family: "ipv6" });
    const count = await countRules(POD_NS);
    const ipRules = ip("-n", POD, "rule", "show");
    expect(await applyInPodRules(POD_NS, { ipv6: true })).toEqual({ changed: false });
    // Through /proc/PID/ns/net of a process in the pod: the same namespace, so the same no-op.
    expect(await applyInPodRules(`/proc/${pod!.pid}/ns/net`, { ipv6: true })).toEqual({ changed: false });
    expect(await saveRules(POD_NS)).toBe(before4);
    expect(await saveRules(POD_NS, { family: "ipv6" })).toBe(before6);
    expect(await countRules(POD_NS)).toBe(count);
    expect(ip("-n", POD, "rule", "show")).toBe(ipRules);
  });

  it("outbound TCP from the pod lands on 127.0.0.1:15001 (and [::1]:15001)", async () => {
    expect(await pod!.connect(HOST_IP, 80)).toMatchObject({ tag: "pod:15001", localPort: 15001 });
    expect(await pod!.connect(HOST_IP6, 80)).toMatchObject({ tag: "pod:15001", localPort: 15001 });
  });

  it("the pod's own traffic to loopback and to its own address is not captured", async () => {
    expect((await pod!.connect("127.0.0.1", 8080)).tag).toBe("pod:8080");
    expect((await pod!.connect(POD_IP, 8080)).tag).toBe("pod:8080");
    expect((await pod!.connect(POD_IP6, 8080)).tag).toBe("pod:8080");
  });

  it("inbound TCP lands on 15006, except 15008 which is not redirected", async () => {
    expect(await host!.connect(POD_IP, 8080)).toMatchObject({ tag: "pod:15006", localPort: 15006 });
    expect(await host!.connect(POD_IP6, 8080)).toMatchObject({ tag: "pod:15006", localPort: 15006 });
    expect(await host!.connect(POD_IP, 15008)).toMatchObject({ tag: "pod:15008", localPort: 15008 });
  });

  it("inbound from the probe address is accepted without redirect", async () => {
    expect(await host!.connect(POD_IP, 8080, PROBE)).toMatchObject({
      tag: "pod:8080",
      remoteAddress: `::ffff:${PROBE}`,
    });
  });

  it("host probe SNAT: rules for exactly the given pods; a probe from the node reaches the app", async () => {
    expect(await applyHostProbeRules(HOST_NS, [POD_IP, "198.18.210.99"])).toEqual({ changed: true });
    let nat = await saveRules(HOST_NS);
    expect(nat.match(/^-A POSTROUTING -j AMBIENT_POSTRT$/gm)).toHaveLength(1);
    expect(nat).toContain(
      `-A AMBIENT_POSTRT -d ${POD_IP}/32 -p tcp -m owner --socket-exists -j SNAT --to-source ${PROBE}`,
    );
    expect(nat).toContain("-A AMBIENT_POSTRT -d 198.18.210.99/32 -p tcp");
    // A connection from a local socket on the node: SNATed, accepted in the pod, straight to the app.
    expect(await host!.connect(POD_IP, 8080)).toMatchObject({
      tag: "pod:8080",
      remoteAddress: `::ffff:${PROBE}`,
    });

    expect(await applyHostProbeRules(HOST_NS, ["198.18.210.99", "198.18.210.99"])).toEqual({ changed: true });
    expect(await applyHostProbeRules(HOST_NS, ["198.18.210.99"])).toEqual({ changed: false });
    nat = await saveRules(HOST_NS);
    expect(nat).not.toContain(POD_IP);
    expect(nat.match(/^-A AMBIENT_POSTRT /gm)).toHaveLength(1);
    expect(await host!.connect(POD_IP, 8080)).toMatchObject({ tag: "pod:15006" });

    expect(await removeHostProbeRules(HOST_NS)).toEqual({ changed: true });
    expect(await removeHostProbeRules(HOST_NS)).toEqual({ changed: false });
    expect(await saveRules(HOST_NS)).not.toContain("AMBIENT");
  });

  it("remove: our rules and route go, foreign ones stay, traffic is direct again; twice is fine", async () => {
    expect(await removeInPodRules(POD_NS)).toBe("removed");
    expect(await saveRules(POD_NS)).toBe(foreignOnly);
    expect(await saveRules(POD_NS, { family: "ipv6" })).not.toContain("AMBIENT");
    expect(ip("-n", POD, "rule", "show")).not.toContain("0x111");
    expect(ip("-n", POD, "-6", "rule", "show")).not.toContain("0x111");
    expect((await pod!.connect(HOST_IP, 80)).tag).toBe("host:80");
    expect((await host!.connect(POD_IP, 8080)).tag).toBe("pod:8080");
    expect(await removeInPodRules(POD_NS)).toBe("removed");
    expect(await saveRules(POD_NS)).toBe(foreignOnly);
  });

  it("DNS capture on: the port-53 rules read back exactly as written; off again removes them", async () => {
    expect(await applyInPodRules(POD_NS, { ipv6: true, dnsCapture: true })).toEqual({ changed: true });
    expect(await oursInPod("ipv4")).toEqual(wantedInPod("ipv4", true));
    expect(await oursInPod("ipv6")).toEqual(wantedInPod("ipv6", true));
    expect(await applyInPodRules(POD_NS, { ipv6: true, dnsCapture: true })).toEqual({ changed: false });
    expect(await applyInPodRules(POD_NS, { ipv6: true })).toEqual({ changed: true });
    expect(await saveRules(POD_NS)).not.toContain("15053");
    expect(await removeInPodRules(POD_NS)).toBe("removed");
  });

  it("an IPv4-only apply removes IPv6 rules left from before", async () => {
    await applyInPodRules(POD_NS, { ipv6: true });
    expect(await applyInPodRules(POD_NS, { ipv6: false })).toEqual({ changed: true });
    expect(await saveRules(POD_NS, { family: "ipv6" })).not.toContain("AMBIENT");
    expect(await oursInPod("ipv4")).toEqual(wantedInPod("ipv4"));
    expect(await removeInPodRules(POD_NS)).toBe("removed");
  });

  it("a netns that is gone: apply rejects with AMB_NETNS_GONE, remove is fine", async () => {
    for (const gone of ["/var/run/netns/amb-t-ipt-missing", "/proc/999999999/ns/net"]) {
      await expect(applyInPodRules(gone, { ipv6: false })).rejects.toMatchObject({
        code: IptablesErrorCode.NETNS_GONE,
      });
      expect(await removeInPodRules(gone)).toBe("netns-gone");
    }
  });

  it("a missing binary inside the netns is named with its Debian package", async () => {
    await expect(
      applyInPodRules(POD_NS, { ipv6: false, commands: { iptablesSave: "iptables-save-missing" } }),
    ).rejects.toMatchObject({
      code: IptablesErrorCode.NOT_FOUND,
      message: "iptables-save-missing not found; install Debian package iptables",
    });
    await removeInPodRules(POD_NS);
  });
});
