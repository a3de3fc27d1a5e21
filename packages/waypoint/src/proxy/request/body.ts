// The downstream request body, streamed to the current attempt as it arrives and kept (up to the
// retry buffer) so that another attempt can send it again: Envoy's retry buffer. A body that
// outgrows it streams through once and makes the request unretriable, as in Envoy; gRPC streaming
// and large uploads flow without waiting for the end, and nothing is read before the request was
// authorized and routed (the first attempt starts the reading).

import { EventEmitter } from "node:events";
import type { Readable, Writable } from "node:stream";

/**
 * Request bodies up to this are kept for retries and mirrors. Envoy's default
 * per_request_buffer_limit_bytes (and so its retry buffer) is 1 MiB.
 */
export const RETRY_BUFFER_BYTES = 1024 * 1024;

export class ReplayBody extends EventEmitter<{ complete: []; failed: [Error] }> {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private sink: Writable | undefined;
  private started = false;
  /** Sent to some attempt but no longer held: the body cannot be replayed. */
  private overflowed = false;
  /** The downstream sent its end of stream. */
  complete = false;
  /** The downstream went away before the end. */
  failure: Error | undefined;
  /** Bytes received from downstream. */
  bytes = 0;

  constructor(
    private readonly source: Readable,
    private readonly limit: number = RETRY_BUFFER_BYTES,
    private readonly onBytes: (n: number) => void = () => {},
  ) {
    super();
  }

  /** Whether another attempt can still get the whole body. */
  get replayable(): boolean {
    return !this.overflowed;
  }

  /** The whole body, once complete and held (for mirrors); undefined otherwise. */
  get whole(): Buffer | undefined {
    return this.complete && !this.overflowed ? Buffer.concat(this.kept) : undefined;
  }

  /** Sends the body to `sink` from the start (what was kept, then the rest as it arrives). */
  attach(sink: Writable): void {
    if (this.overflowed) throw new Error("the request body was larger than the retry buffer");
    this.start();
    this.sink = sink;
    for (const chunk of this.kept) sink.write(chunk);
    if (this.complete) sink.end();
    else this.flow();
  }

  /** The attempt using the body is over: stop sending to it (a retry may attach again). */
  detach(sink: Writable): void {
    if (this.sink !== sink) return;
    this.sink = undefined;
    sink.removeListener("drain", this.onDrain);
    if (!this.complete) this.source.pause();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.source.on("data", (chunk: Buffer) => this.onData(chunk));
    this.source.once("end", () => {
      this.complete = true;
      this.sink?.end();
      this.emit("complete");
    });
    // A client that resets or closes before its end of stream: the attempt must not wait for it.
    this.source.once("close", () => {
      if (this.complete) return;
      this.failure = new Error("the client closed the request before its end");
      this.emit("failed", this.failure);
    });
    this.source.on("error", () => {});
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.onBytes(chunk.length);
    if (!this.overflowed) {
      this.keptBytes += chunk.length;
      if (this.keptBytes <= this.limit) this.kept.push(chunk);
      else {
        this.overflowed = true;
        this.kept = [];
      }
    }
    if (this.sink && !this.sink.write(chunk)) {
      this.source.pause();
      this.sink.once("drain", this.onDrain);
    }
  }

  private readonly onDrain = () => {
    if (this.sink) this.source.resume();
  };

  private flow(): void {
    this.source.resume();
  }
}
