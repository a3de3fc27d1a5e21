// The SOCKS5 client's failure modes: a proxy that closes before its reply (ztunnel closing an
// unenrolled pod's listeners mid-handshake) and one that never answers must end the request with
// an error that says so, not leave the caller waiting forever.

import { once } from "node:events";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { httpViaSocks, socksConnect } from "./socks-client.js";

const servers: Server[] = [];
const sockets = new Set<Socket>();

/** A proxy on 127.0.0.1 that runs `behave` on every connection. */
async function proxy(behave: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    behave(s);
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** Answers the greeting (no auth) and the CONNECT (succeeded), then hands the socket on. */
function socksOk(then: (s: Socket) => void): (s: Socket) => void {
  return (s) => {
    let stage = 0;
    const onData = () => {
      if (stage++ === 0) return s.write(Buffer.from([5, 0]));
      s.removeListener("data", onData);
      s.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 80]));
      then(s);
    };
    s.on("data", onData);
  };
}

afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) s.close();
});

describe("socksConnect", () => {
  it("fails when the proxy closes the connection before its CONNECT reply", async () => {
    const port = await proxy((s) => s.once("data", () => s.end()));
    await expect(socksConnect({ host: "127.0.0.1", port }, { host: "web.demo", port: 80 })).rejects.toThrow(
      /SOCKS5 proxy closed the connection before its reply/,
    );
  });

  it("keeps a half-close after the reply for the caller (the tunnel stays usable)", async () => {
    let heard: (text: string) => void = () => {};
    const proxyHeard = new Promise<string>((resolve) => (heard = resolve));
    const port = await proxy(
      socksOk((s) => {
        s.end("bye");
        s.on("data", (d: Buffer) => heard(d.toString()));
      }),
    );
    const s = await socksConnect({ host: "127.0.0.1", port }, { host: "web.demo", port: 80 });
    sockets.add(s);
    const got: Buffer[] = [];
    s.on("data", (d: Buffer) => got.push(d));
    s.resume();
    await once(s, "end");
    expect(Buffer.concat(got).toString()).toBe("bye");
    // The proxy's FIN after the reply is the caller's to handle: our side can still send.
    s.end("still here");
    expect(await proxyHeard).toBe("still here");
  });
});

describe("httpViaSocks", () => {
  it("gives up after timeoutMs, naming the request, when nothing answers", async () => {
    const port = await proxy(socksOk(() => {}));
    // The client dials the pod's SOCKS5 port 15080; point "the pod" at our proxy by its port only.
    await expect(
      httpViaSocks("127.0.0.1", {
        host: "web.demo",
        port: 80,
        path: "/slow",
        timeoutMs: 200,
        proxyPort: port,
      }),
    ).rejects.toThrow(/no HTTP answer within 200 ms for GET web\.demo:80\/slow from 127\.0\.0\.1/);
  });
});
