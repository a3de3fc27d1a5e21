import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { nodeHasReusePort, parseZtunnelConfig } from "../config.js";
import { LocalSocketFactory } from "./socket-factory.js";

const POD = { uid: "u1", name: "client", namespace: "demo", ip: "127.41.1.10" };

describe("LocalSocketFactory --reuse-port", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) if (s.listening) await new Promise((r) => s.close(r));
  });

  it("without it, a second listener on a pod's port is refused (EADDRINUSE)", async () => {
    const f = new LocalSocketFactory("127.41.1.1");
    const a = createServer();
    const b = createServer();
    servers.push(a, b);
    await f.listen(a, POD, 15080);
    await expect(f.listen(b, POD, 15080)).rejects.toMatchObject({ code: "EADDRINUSE" });
  });

  it.skipIf(!nodeHasReusePort())(
    "with it, two processes' worth of listeners share the pod's and the node's ports (Node >= 22.12)",
    async () => {
      const first = new LocalSocketFactory("127.41.1.1", true);
      const second = new LocalSocketFactory("127.41.1.1", true);
      const pods = [createServer(), createServer()];
      const nodes = [createServer(), createServer()];
      servers.push(...pods, ...nodes);
      await first.listen(pods[0]!, POD, 15080);
      await second.listen(pods[1]!, POD, 15080);
      await first.listenNode(nodes[0]!, "127.41.1.1", 15021);
      await second.listenNode(nodes[1]!, "127.41.1.1", 15021);
      // Both accept: connections land on either (the kernel hashes the 4-tuple).
      let accepted = 0;
      for (const s of pods)
        s.on("connection", (c) => {
          accepted++;
          c.destroy();
        });
      const socket = first.connect(undefined, { host: POD.ip, port: 15080 });
      await once(socket, "connect");
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect(accepted).toBe(1);
    },
  );

  it("refuses --reuse-port on a Node without it, naming the version it needs", () => {
    const argv = ["--node-name", "n1", "--reuse-port"];
    if (nodeHasReusePort()) expect(parseZtunnelConfig(argv, {}).reusePort).toBe(true);
    else expect(() => parseZtunnelConfig(argv, {})).toThrow(/--reuse-port needs Node.js 22.12 or later/);
  });

  it("knows which Node versions have net reusePort", () => {
    expect(nodeHasReusePort("20.20.2")).toBe(false);
    expect(nodeHasReusePort("22.11.0")).toBe(false);
    expect(nodeHasReusePort("22.12.0")).toBe(true);
    expect(nodeHasReusePort("24.22.3")).toBe(true);
  });
});
