import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { WaypointErrorCode } from "@ambient/core";
import { keepaliveOf } from "@ambient/netns";
import { afterEach, describe, expect, it } from "vitest";
import { openUpstream, type UpstreamDeps } from "./upstream.js";

// An endpoint outside the mesh: the waypoint dials it with plain TCP.
const outsideMesh = (port: number) => ({
  workload: {
    uid: "Kubernetes//Pod/demo/db",
    addresses: [Uint8Array.of(127, 0, 0, 1)],
    tunnelProtocol: "NONE",
  },
  port,
});
// Plain TCP needs none of the HBONE dependencies.
const deps = { connectTimeoutMs: 10_000 } as UpstreamDeps;
const fdOf = (s: Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;

let server: Server | undefined;
afterEach(() => server?.close());

async function listening(): Promise<number> {
  server = createServer((s) => s.on("error", () => {}));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as { port: number }).port;
}

describe("openUpstream to an endpoint outside the mesh", () => {
  it("sets the DestinationRule's tcpKeepalive (time, interval, probes) on the socket", async () => {
    const port = await listening();
    const target = {
      ...outsideMesh(port),
      keepalive: { timeMs: 7_000, intervalMs: 3_000, probes: 4 },
    } as unknown as Parameters<typeof openUpstream>[1];
    const socket = (await openUpstream(deps, target, {})) as Socket;
    expect(keepaliveOf(fdOf(socket))).toEqual({
      enabled: true,
      idleSeconds: 7,
      intervalSeconds: 3,
      probes: 4,
    });
    socket.destroy();
  });

  it("leaves keepalive off without a rule", async () => {
    const port = await listening();
    const socket = (await openUpstream(deps, outsideMesh(port) as never, {})) as Socket;
    expect(keepaliveOf(fdOf(socket)).enabled).toBe(false);
    socket.destroy();
  });
});

describe("openUpstream without an endpoint address", () => {
  it("dials a PASSTHROUGH service's original destination over plain TCP", async () => {
    const port = await listening();
    const socket = (await openUpstream(deps, { address: "127.0.0.1", port }, {})) as Socket;
    expect(socket.remotePort).toBe(port);
    socket.destroy();
  });

  it("resolves a DNS endpoint's hostname for every new connection", async () => {
    const port = await listening();
    const asked: string[] = [];
    const dnsDeps = {
      ...deps,
      resolveName: async (name: string) => {
        asked.push(name);
        return "127.0.0.1";
      },
    } as UpstreamDeps;
    const target = {
      workload: { uid: "egress/db", addresses: [], hostname: "db.example", tunnelProtocol: "NONE" },
      port,
    } as never;
    for (let i = 0; i < 2; i++) ((await openUpstream(dnsDeps, target, {})) as Socket).destroy();
    expect(asked).toEqual(["db.example", "db.example"]);
  });

  it("fails with a connect error naming the hostname that does not resolve", async () => {
    const failing = {
      ...deps,
      resolveName: async (name: string) => {
        throw new Error(`getaddrinfo ENOTFOUND ${name}`);
      },
    } as UpstreamDeps;
    const target = {
      workload: { uid: "egress/db", addresses: [], hostname: "gone.example", tunnelProtocol: "NONE" },
      port: 80,
    } as never;
    await expect(openUpstream(failing, target, {})).rejects.toMatchObject({
      code: WaypointErrorCode.UPSTREAM_CONNECT,
      message:
        "cannot resolve gone.example, the hostname of endpoint egress/db: getaddrinfo ENOTFOUND gone.example",
    });
  });
});
