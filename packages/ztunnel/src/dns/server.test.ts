import { createSocket } from "node:dgram";
import { createMemoryLogger, createRegistry, parseIp, type Service } from "@ambient/core";
import { ProxyState } from "@ambient/dataplane";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PodRef } from "../proxy/socket-factory.js";
import { Rcode, readHeader } from "./message.js";

import { DnsProxy } from "./server.js";
import { TcpFrames } from "./tcp-frames.js";

/** dns-packet decodes the rcode by name; its typings leave it out. */
const rcode = (p: dnsPacket.DecodedPacket) => (p as unknown as { rcode: string }).rcode;

const pod: PodRef = { uid: "u", name: "client", namespace: "demo", ip: "127.0.0.1" };

const many: Service = {
  name: "many",
  namespace: "demo",
  hostname: "many.demo.svc.cluster.local",
  addresses: Array.from({ length: 60 }, (_, i) => ({ network: "", address: parseIp(`10.96.1.${i + 1}`)! })),
  ports: [],
  subjectAltNames: [],
};
const web: Service = {
  ...many,
  name: "web",
  hostname: "web.demo.svc.cluster.local",
  addresses: [{ network: "", address: parseIp("10.96.0.10")! }],
};

// An upstream that answers every UDP query with one A record, echoing the id.
const upstream = createSocket("udp4");
let upstreamPort = 0;
beforeAll(async () => {
  upstream.on("message", (q, rinfo) => {
    const p = dnsPacket.decode(q);
    const a = dnsPacket.encode({
      id: p.id ?? 0,
      type: "response",
      flags: 0x0080,
      questions: p.questions ?? [],
      answers: [{ name: p.questions?.[0]?.name ?? "", type: "A", class: "IN", ttl: 5, data: "192.0.2.1" }],
    });
    upstream.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => upstream.bind(0, "127.0.0.1", () => r()));
  upstreamPort = upstream.address().port;
});
afterAll(() => upstream.close());

function proxy(port = upstreamPort, timeoutMs = 1000) {
  const state = new ProxyState();
  state.applyAddresses({
    upserts: [
      ["demo/web", { service: web }],
      ["demo/many", { service: many }],
    ],
  });
  return new DnsProxy({
    state,
    upstream: { host: "127.0.0.1", port },
    upstreamTimeoutMs: timeoutMs,
    registry: createRegistry(),
    logger: createMemoryLogger("debug").logger,
  });
}

const query = (name: string, type: "A" | "AAAA" | "TXT" = "A", extra: Partial<dnsPacket.Packet> = {}) =>
  dnsPacket.encode({
    id: 7,
    type: "query",
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    ...extra,
  });

describe("DnsProxy.handle", () => {
  it("answers a mesh name authoritatively, echoing id and question", async () => {
    const out = dnsPacket.decode((await proxy().handle(pod, query("web"), "udp"))!);
    expect(out.id).toBe(7);
    expect(rcode(out)).toBe("NOERROR");
    expect(out.flag_aa).toBe(true);
    expect(out.questions?.[0]?.name).toBe("web");
    expect(out.answers).toMatchObject([{ name: "web", type: "A", ttl: 30, data: "10.96.0.10" }]);
  });

  it("AAAA for a service with only IPv4: NOERROR, no answers", async () => {
    const out = dnsPacket.decode(
      (await proxy().handle(pod, query("web.demo.svc.cluster.local", "AAAA"), "udp"))!,
    );
    expect(rcode(out)).toBe("NOERROR");
    expect(out.answers).toEqual([]);
  });

  it("over UDP, an answer larger than 512 bytes is truncated (TC) unless EDNS allows it; TCP gets it whole", async () => {
    const p = proxy();
    const udp = dnsPacket.decode((await p.handle(pod, query("many"), "udp"))!);
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    const tcp = dnsPacket.decode((await p.handle(pod, query("many"), "tcp"))!);
    expect(tcp.answers).toHaveLength(60);
    const edns = query("many", "A", {
      additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096 } as dnsPacket.Answer],
    });
    expect(dnsPacket.decode((await p.handle(pod, edns, "udp"))!).answers).toHaveLength(60);
  });

  it("forwards other names to the upstream and relays its answer", async () => {
    const out = dnsPacket.decode((await proxy().handle(pod, query("example.com"), "udp"))!);
    expect(out.id).toBe(7);
    expect(out.answers).toMatchObject([{ data: "192.0.2.1" }]);
  });

  it("SERVFAIL when the upstream does not answer in time", async () => {
    const silent = createSocket("udp4");
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    try {
      const out = dnsPacket.decode(
        (await proxy(silent.address().port, 100).handle(pod, query("example.com"), "udp"))!,
      );
      expect(rcode(out)).toBe("SERVFAIL");
      expect(out.questions?.[0]?.name).toBe("example.com");
    } finally {
      silent.close();
    }
  });

  it("SERVFAIL at once when nothing listens upstream (ICMP port unreachable on a connected socket)", async () => {
    const closed = createSocket("udp4");
    await new Promise<void>((r) => closed.bind(0, "127.0.0.1", () => r()));
    const port = closed.address().port;
    closed.close();
    const started = Date.now();
    const out = dnsPacket.decode((await proxy(port, 5000).handle(pod, query("example.com"), "udp"))!);
    expect(rcode(out)).toBe("SERVFAIL");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("FORMERR for a bad body behind a good header; NOTIMP for other opcodes; nothing for runts and responses", async () => {
    const p = proxy();
    const bad = Buffer.concat([query("web").subarray(0, 12), Buffer.from([0x3f, 0x61])]);
    const formerr = (await p.handle(pod, bad, "udp"))!;
    expect(readHeader(formerr)?.id).toBe(7);
    expect(formerr[3]! & 0xf).toBe(Rcode.FORMERR);
    const twoQuestions = dnsPacket.encode({
      id: 8,
      type: "query",
      questions: [
        { name: "a", type: "A" },
        { name: "b", type: "A" },
      ],
    });
    expect((await p.handle(pod, twoQuestions, "udp"))![3]! & 0xf).toBe(Rcode.FORMERR);
    const notify = Buffer.from(query("web"));
    notify[2] = (notify[2]! & 0x87) | (4 << 3);
    expect((await p.handle(pod, notify, "udp"))![3]! & 0xf).toBe(Rcode.NOTIMP);
    expect(await p.handle(pod, Buffer.from([1, 2, 3]), "udp")).toBeUndefined();
    const response = Buffer.from(query("web"));
    response[2] = response[2]! | 0x80;
    expect(await p.handle(pod, response, "udp")).toBeUndefined();
  });

  it("never throws on random bytes or truncated queries", async () => {
    const p = proxy(1, 50);
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const inputs: Buffer[] = [];
    const good = query("web.demo.svc.cluster.local", "AAAA");
    for (let n = 0; n <= good.length; n++) inputs.push(good.subarray(0, n));
    for (let i = 0; i < 500; i++) {
      const b = Buffer.alloc(rand() % 80);
      for (let j = 0; j < b.length; j++) b[j] = rand() & 0xff;
      // Keep QR clear and QDCOUNT small in half of them, so they reach the body decoder.
      if (i % 2 === 0 && b.length >= 12) {
        b[2] = b[2]! & 0x07;
        b[4] = 0;
        b[5] = 1;
      }
      inputs.push(b);
    }
    for (const input of inputs) {
      const out = await p.handle(pod, input, "udp");
      if (out) expect(readHeader(out)?.isResponse).toBe(true);
    }
  });
});

describe("TcpFrames", () => {
  it("splits several messages and waits for a partial one", () => {
    const f = new TcpFrames();
    const a = TcpFrames.frame(Buffer.from("abc"));
    const b = TcpFrames.frame(Buffer.from("de"));
    const all = Buffer.concat([a, b]);
    expect(f.push(all.subarray(0, 4)).map(String)).toEqual([]);
    expect(f.push(all.subarray(4, 7)).map(String)).toEqual(["abc"]);
    expect(f.pending).toBe(2);
    expect(f.push(all.subarray(7)).map(String)).toEqual(["de"]);
    expect(f.pending).toBe(0);
  });
});
