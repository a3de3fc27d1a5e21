import { once } from "node:events";
import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer,
  type Http2Server,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asByteStream } from "./stream-adapter.js";

// A real HTTP/2 stream under the adapter: what the peer sees is what nghttp2's rapid-reset budget
// counts (RST_STREAM), so the assertions are on the server's side of the stream.
describe("asByteStream", () => {
  let server: Http2Server;
  let client: ClientHttp2Session;
  let serverStreams: ServerHttp2Stream[];
  /** Server streams that read the client's END_STREAM. */
  let ended: Set<ServerHttp2Stream>;
  const closed = (s: { closed: boolean; once(e: "close", f: () => void): unknown }) =>
    s.closed ? Promise.resolve() : new Promise<void>((r) => s.once("close", () => r()));

  beforeEach(async () => {
    serverStreams = [];
    ended = new Set();
    server = createServer();
    server.on("stream", (stream) => {
      serverStreams.push(stream);
      stream.on("error", () => {}); // a reset from the client surfaces here
      stream.respond({ ":status": 200 });
      // Like an upstream that answers, then finishes once the client has finished.
      stream.write("response");
      stream.on("data", () => {});
      stream.on("end", () => {
        ended.add(stream);
        stream.end();
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  afterEach(async () => {
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function open() {
    const stream = client.request({ ":method": "POST", ":path": "/" });
    await once(stream, "response");
    const outer = asByteStream(stream);
    const [chunk] = await once(outer, "data");
    expect(String(chunk)).toBe("response");
    const peer = serverStreams.at(-1)!;
    return { stream, outer, peer };
  }

  it("a destroy without an error (node:http is done with its socket) ends the stream cleanly, without RST_STREAM", async () => {
    const { stream, outer, peer } = await open();
    outer.destroy();
    await closed(stream);
    await closed(peer);
    // The peer read END_STREAM (not a reset, which would have aborted its stream).
    expect(ended.has(peer)).toBe(true);
    expect(peer.aborted).toBe(false);
  });

  it("a destroy with an error resets the stream at once", async () => {
    const { stream, outer, peer } = await open();
    outer.on("error", () => {});
    outer.destroy(new Error("upstream timed out"));
    await closed(stream);
    await closed(peer);
    expect(ended.has(peer)).toBe(false);
    expect(peer.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
  });

  it("bytes pass through unchanged both ways, strings included", async () => {
    const { outer, peer } = await open();
    const got: Buffer[] = [];
    peer.on("data", (c: Buffer) => got.push(c));
    outer.write("GET / HTTP/1.1\r\n");
    outer.end(Buffer.from([0, 255, 1]));
    await once(peer, "end");
    expect(Buffer.concat(got)).toEqual(
      Buffer.concat([Buffer.from("GET / HTTP/1.1\r\n"), Buffer.from([0, 255, 1])]),
    );
  });
});
