// Just enough HPACK (RFC 7541) for tests that write HTTP/2 frames by hand: requests are encoded as
// literals without indexing (no state to keep in step with the server), and responses are decoded in
// full (static and dynamic table, Huffman), since nghttp2 indexes and Huffman-codes what it sends.

/** Appendix A, indexes 1..61. */
const STATIC_TABLE: readonly [string, string][] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

// Appendix B's code lengths for symbols 0..256 (EOS), as (48 + length) characters. The code is
// canonical (codes assigned in order of length, then symbol), so lengths alone rebuild it.
const HUFFMAN_LENGTHS =
  "=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=67777777777777777777777878=C=>6?565656665776665676556777" +
  "77?;>=LDFDDFFFGFGGGGGHGHHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKKJHICEJKKJKHEEJJLKKKDHDEFEEGFFIIHHJGJKJJ" +
  "KKKKKLKKKKKJN";

/** "length:code" → symbol. */
const HUFFMAN = (() => {
  const lengths = [...HUFFMAN_LENGTHS].map((c) => c.charCodeAt(0) - 48);
  const order = lengths.map((_, s) => s).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const table = new Map<string, number>();
  let code = 0;
  let prev = lengths[order[0]!]!;
  order.forEach((symbol, i) => {
    const len = lengths[symbol]!;
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    table.set(`${len}:${code}`, symbol);
  });
  return table;
})();

function huffmanDecode(bytes: Buffer): string {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const symbol = HUFFMAN.get(`${len}:${code}`);
      if (symbol === undefined) continue;
      if (symbol === 256) throw new Error("HPACK: EOS inside a Huffman string");
      out.push(symbol);
      code = 0;
      len = 0;
    }
  }
  // What is left must be padding: fewer than 8 one-bits.
  if (len >= 8 || code !== 2 ** len - 1) throw new Error("HPACK: bad Huffman padding");
  return Buffer.from(out).toString("latin1");
}

export function encodeInteger(value: number, prefixBits: number, firstByte = 0): Buffer {
  const max = 2 ** prefixBits - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function encodeString(text: string): Buffer {
  const raw = Buffer.from(text, "latin1");
  return Buffer.concat([encodeInteger(raw.length, 7), raw]);
}

/** A header block of literals without indexing and with new names (0x00 prefix), never Huffman. */
export function encodeHeaders(headers: readonly [string, string][]): Buffer {
  return Buffer.concat(
    headers.flatMap(([name, value]) => [Buffer.from([0]), encodeString(name), encodeString(value)]),
  );
}

/** Decodes the server's header blocks; one per connection, since the dynamic table is per connection. */
export class HpackDecoder {
  #dynamic: [string, string][] = [];
  #size = 0;
  #maxSize = 4096;

  decode(block: Buffer): [string, string][] {
    const out: [string, string][] = [];
    let pos = 0;
    const integer = (prefixBits: number): number => {
      const max = 2 ** prefixBits - 1;
      let value = block[pos++]! & max;
      if (value < max) return value;
      for (let shift = 1; ; shift *= 128) {
        const b = block[pos++];
        if (b === undefined) throw new Error("HPACK: truncated integer");
        value += (b & 127) * shift;
        if (b < 128) return value;
      }
    };
    const string = (): string => {
      const huffman = (block[pos]! & 0x80) !== 0;
      const len = integer(7);
      const bytes = block.subarray(pos, pos + len);
      pos += len;
      return huffman ? huffmanDecode(bytes) : bytes.toString("latin1");
    };
    const entry = (index: number): [string, string] => {
      const e = index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.#dynamic[index - 62];
      if (!e || index === 0) throw new Error(`HPACK: no table entry ${index}`);
      return e;
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        out.push(entry(integer(7)));
      } else if ((b & 0xe0) === 0x20) {
        this.#maxSize = integer(5);
        this.#evict(0);
      } else {
        const incremental = (b & 0xc0) === 0x40;
        const index = integer(incremental ? 6 : 4);
        const name = index === 0 ? string() : entry(index)[0];
        const header: [string, string] = [name, string()];
        out.push(header);
        if (incremental) this.#add(header);
      }
    }
    return out;
  }

  #add(header: [string, string]): void {
    const size = header[0].length + header[1].length + 32;
    this.#evict(size);
    if (size <= this.#maxSize) {
      this.#dynamic.unshift(header);
      this.#size += size;
    }
  }

  #evict(room: number): void {
    while (this.#size + room > this.#maxSize && this.#dynamic.length > 0) {
      const [n, v] = this.#dynamic.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }
}
