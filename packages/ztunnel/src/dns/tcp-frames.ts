// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message behind a two-byte length. The length
// bounds a message at 64 KiB; a reader holds at most one partial message plus what arrived with it.

export class TcpFrames {
  private buffered: Buffer = Buffer.alloc(0);

  /** Messages completed by `chunk`, in order; a trailing partial one stays buffered. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const out: Buffer[] = [];
    while (this.buffered.length >= 2) {
      const length = this.buffered.readUInt16BE(0);
      if (this.buffered.length < 2 + length) break;
      out.push(this.buffered.subarray(2, 2 + length));
      this.buffered = this.buffered.subarray(2 + length);
    }
    return out;
  }

  /** Bytes of an incomplete message waiting for the rest. */
  get pending(): number {
    return this.buffered.length;
  }

  static frame(message: Buffer): Buffer {
    const out = Buffer.allocUnsafe(2 + message.length);
    out.writeUInt16BE(message.length, 0);
    message.copy(out, 2);
    return out;
  }
}
