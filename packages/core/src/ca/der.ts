// A minimal DER writer for the one structure the CA builds on its hot path: the workload leaf.
// @peculiar/x509's generic ASN.1 machinery costs ~2.4 ms per leaf; writing the fixed shape
// directly and signing with node:crypto costs ~0.1 ms. Encoding only, plus one bounds-checked
// header reader that slices the signed part out of an (already parsed) CSR.

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
} as const;

export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...items);
export const octetString = (bytes: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, bytes);
export const derNull = (): Buffer => tlv(TAG.NULL);
export const booleanTrue = (): Buffer => tlv(TAG.BOOLEAN, Buffer.from([0xff]));

/** [n] EXPLICIT: a constructed context tag wrapping a complete element. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT on a primitive (IA5String, OCTET STRING): the element's tag is replaced. */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

/** A non-negative INTEGER from big-endian magnitude bytes, minimally encoded. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const pad = trimmed.length === 0 || trimmed[0]! & 0x80 ? [0] : [];
  return tlv(TAG.INTEGER, Buffer.from(pad), trimmed);
}

export function smallInteger(n: number): Buffer {
  return unsignedInteger(Buffer.from([n]));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const [first, second, ...rest] = parts as [number, number, ...number[]];
  const out: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** BIT STRING of whole bytes (a signature, a public key): zero unused bits. */
export function bitStringBytes(bytes: Uint8Array): Buffer {
  return tlv(TAG.BIT_STRING, Buffer.from([0]), bytes);
}

/**
 * A named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte, and DER
 * drops trailing zero bits, recording how many are unused.
 */
export function namedBits(bits: readonly number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3] = bytes[b >> 3]! | (0x80 >> (b & 7));
  const unused = 7 - (highest & 7);
  return tlv(TAG.BIT_STRING, Buffer.from([unused]), bytes);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always whole seconds in UTC. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2030-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ""); // 20300102030405
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, "ascii"));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${digits}Z`, "ascii"));
}

/** IA5String content for a SAN; throws on non-ASCII, which no SPIFFE ID or DNS name contains. */
export function ia5(text: string): Buffer {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) throw new Error(`"${text}" is not ASCII and cannot be an IA5String SAN`);
  }
  return Buffer.from(text, "ascii");
}

/**
 * The bytes of the first element inside the SEQUENCE `outer` (a CSR's certificationRequestInfo,
 * exactly as signed), or undefined when the headers do not add up.
 */
export function firstElement(outer: Uint8Array): Uint8Array | undefined {
  const o = header(outer, 0);
  if (!o || outer[0] !== TAG.SEQUENCE) return undefined;
  const inner = header(outer, o.headerLength);
  if (!inner) return undefined;
  const end = o.headerLength + inner.headerLength + inner.length;
  return end <= o.headerLength + o.length ? outer.subarray(o.headerLength, end) : undefined;
}

function header(buf: Uint8Array, offset: number): { headerLength: number; length: number } | undefined {
  const first = buf[offset + 1];
  if (first === undefined) return undefined;
  let length = first;
  let headerLength = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[offset + 2 + i];
      if (b === undefined) return undefined;
      length = length * 256 + b;
    }
    headerLength += n;
  }
  return offset + headerLength + length <= buf.length ? { headerLength, length } : undefined;
}
