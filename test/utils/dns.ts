// A tiny authoritative DNS server for tests, on UDP and TCP of one loopback port: answers A for the
// names it is given, NXDOMAIN otherwise, and counts what it was asked. Plus raw-query helpers.

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import dnsPacket from "dns-packet";

export interface TestUpstream {
  host: string;
  port: number;
  /** Names asked, lower case, by transport. */
  asked: { udp: string[]; tcp: string[] };
  close(): Promise<void>;
}

function answer(query: Buffer, records: Record<string, string>): Buffer | undefined {
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  const q = packet.questions?.[0];
  if (!q) return undefined;
  const ip = records[q.name.toLowerCase()];
  return dnsPacket.encode({
    id: packet.id ?? 0,
    type: "response",
    flags: (ip ? 0 : 3) | 0x0080 | 0x0400,
    questions: [q],
    answers: ip && q.type === "A" ? [{ name: q.name, type: "A", class: "IN", ttl: 60, data: ip }] : [],
  });
}

/** Listens on `host` (UDP and TCP, one port). */
export async function startTestUpstream(
  host: string,
  records: Record<string, string>,
): Promise<TestUpstream> {
  const asked = { udp: [] as string[], tcp: [] as string[] };
  const note = (t: "udp" | "tcp", q: Buffer) => {
    try {
      asked[t].push(dnsPacket.decode(q).questions?.[0]?.name.toLowerCase() ?? "");
    } catch {
      asked[t].push("");
    }
  };
  const tcp: Server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const q = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + q.length);
        note("tcp", q);
        const a = answer(q, records);
        if (a) socket.write(Buffer.concat([Buffer.from([a.length >> 8, a.length & 0xff]), a]));
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(0, host, () => r()));
  const port = (tcp.address() as { port: number }).port;
  const udp: UdpSocket = createSocket("udp4");
  udp.on("message", (q, rinfo) => {
    note("udp", q);
    const a = answer(q, records);
    if (a) udp.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(port, host, () => r()));
  return {
    host,
    port,
    asked,
    close: async () => {
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}

/** Sends raw bytes over UDP and resolves with the first answer, or undefined after `waitMs`. */
export function udpExchange(
  host: string,
  port: number,
  bytes: Buffer,
  waitMs = 300,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, waitMs);
    s.on("message", (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(msg);
    });
    s.send(bytes, port, host);
  });
}

/** Writes raw bytes on one TCP connection and resolves with every length-prefixed answer until it closes or `waitMs`. */
export function tcpExchange(
  host: string,
  port: number,
  bytes: Buffer,
  expected: number,
  waitMs = 2000,
  /** Shut our side after writing (the answers must still come). */
  halfClose = false,
): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const s = connect({ host, port, allowHalfOpen: true });
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(finish, waitMs);
    s.on("error", finish);
    s.on("close", finish);
    s.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= expected) finish();
    });
    s.write(bytes);
    if (halfClose) s.end();
  });
}

/** A length-prefixed TCP frame. */
export function frame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from([message.length >> 8, message.length & 0xff]), message]);
}

export function query(name: string, type: "A" | "AAAA" = "A", id = 4242): Buffer {
  return dnsPacket.encode({
    id,
    type: "query",
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
  });
}
