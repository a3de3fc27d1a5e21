// DNS messages for the proxy: the strict part done by hand (the 12-byte header, which decides
// whether a malformed query gets FORMERR or is dropped) and the rest through `dns-packet`, the
// npm registry's most used codec (RFC 1035 names with compression, RR types, EDNS OPT).

import dnsPacket, { type Answer, type Packet, type Question } from "dns-packet";

export const HEADER_BYTES = 12;
/** RFC 1035 §4.2.1: the UDP payload a client without EDNS accepts. */
export const CLASSIC_UDP_BYTES = 512;
/** RFC 6891 lets a client announce more; answers above 4096 fragment on most paths (DNS flag day 2020 picked 1232). */
const MAX_UDP_BYTES = 4096;

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof Rcode)[keyof typeof Rcode];

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const OPCODE_MASK = 0x7800;

export interface Header {
  id: number;
  flags: number;
  /** 0 = QUERY; anything else we answer NOTIMP. */
  opcode: number;
  isResponse: boolean;
  recursionDesired: boolean;
}

/** The fixed header, or undefined when there are fewer than 12 bytes (such a packet is dropped). */
export function readHeader(bytes: Uint8Array): Header | undefined {
  if (bytes.length < HEADER_BYTES) return undefined;
  const flags = (bytes[2]! << 8) | bytes[3]!;
  return {
    id: (bytes[0]! << 8) | bytes[1]!,
    flags,
    opcode: (flags & OPCODE_MASK) >> 11,
    isResponse: (flags & QR) !== 0,
    recursionDesired: (flags & RD) !== 0,
  };
}

export type ParsedQuery =
  | { ok: true; header: Header; question: Question; packet: Packet }
  | { ok: false; header: Header | undefined; rcode: Rcode; reason: string };

/**
 * A query we can answer: a request (QR=0), opcode QUERY, exactly one question (RFC 9619: QDCOUNT
 * must be 1), decodable to its last byte. Anything else carries the rcode to reply with; without
 * a header there is nothing to reply to.
 */
export function parseQuery(bytes: Uint8Array): ParsedQuery {
  const header = readHeader(bytes);
  if (!header) return { ok: false, header, rcode: Rcode.FORMERR, reason: "shorter than a DNS header" };
  if (header.isResponse)
    return { ok: false, header: undefined, rcode: Rcode.FORMERR, reason: "a response, not a query" };
  if (header.opcode !== 0)
    return { ok: false, header, rcode: Rcode.NOTIMP, reason: `opcode ${header.opcode}` };
  let packet: Packet;
  try {
    packet = dnsPacket.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    return { ok: false, header, rcode: Rcode.FORMERR, reason: `undecodable: ${(err as Error).message}` };
  }
  const questions = packet.questions ?? [];
  if (questions.length !== 1 || !questions[0]) {
    return { ok: false, header, rcode: Rcode.FORMERR, reason: `${questions.length} questions` };
  }
  return { ok: true, header, question: questions[0], packet };
}

/** An error answer echoing the id, opcode and RD bit (and the question when we have one). */
export function errorResponse(header: Header, rcode: Rcode, question?: Question): Buffer {
  const flags = QR | (header.flags & (OPCODE_MASK | RD)) | RA | rcode;
  return dnsPacket.encode({ id: header.id, type: "response", flags, questions: question ? [question] : [] });
}

/**
 * Our own authoritative answer. Over UDP, one larger than the client accepts goes out empty with
 * TC set (RFC 1035 §4.2.1), and the client retries over TCP.
 */
export function localResponse(
  query: { header: Header; question: Question; packet: Packet },
  rcode: Rcode,
  answers: Answer[],
  udp: boolean,
): Buffer {
  const flags = QR | AA | (query.header.flags & RD) | RA | rcode;
  const base = { id: query.header.id, type: "response" as const, questions: [query.question] };
  const full = dnsPacket.encode({ ...base, flags, answers });
  if (!udp || full.length <= udpLimit(query.packet)) return full;
  return dnsPacket.encode({ ...base, flags: flags | TC });
}

/** The largest UDP answer this client takes: its EDNS payload size, else 512 bytes. */
export function udpLimit(packet: Packet): number {
  for (const rr of packet.additionals ?? []) {
    if (rr.type === "OPT") {
      const size = (rr as { udpPayloadSize?: number }).udpPayloadSize ?? CLASSIC_UDP_BYTES;
      return Math.min(Math.max(size, CLASSIC_UDP_BYTES), MAX_UDP_BYTES);
    }
  }
  return CLASSIC_UDP_BYTES;
}
