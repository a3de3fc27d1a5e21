// Protocols through a waypoint on 127.27.x.y: gRPC unary and bidirectional streaming (HTTP/2 prior
// knowledge over HBONE), and a WebSocket echo (HTTP/1.1 Upgrade).

import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect as h2connect } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { socksConnect } from "../utils/socks.js";

const CLIENT = "127.27.1.10";
const GRPC_POD = "127.27.2.10";
const WS_POD = "127.27.2.11";

const identity = (b: Buffer) => b;
const ECHO_SERVICE: grpc.ServiceDefinition = {
  Unary: {
    path: "/test.Echo/Unary",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Chat: {
    path: "/test.Echo/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

let t: TestMesh;
let grpcServer: grpc.Server;
let wsServer: HttpServer;

beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.27.1.1"),
      node("node-b", "127.27.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({
        name: "grpc",
        namespace: "demo",
        node: "node-b",
        ip: GRPC_POD,
        sa: "grpc",
        labels: { app: "grpc" },
      }),
      pod({ name: "ws", namespace: "demo", node: "node-b", ip: WS_POD, sa: "ws", labels: { app: "ws" } }),
      service({
        name: "grpc",
        namespace: "demo",
        vip: "127.27.100.1",
        selector: { app: "grpc" },
        ports: [{ port: 50051, targetPort: 50051, name: "grpc" }],
      }),
      service({
        name: "ws",
        namespace: "demo",
        vip: "127.27.100.2",
        selector: { app: "ws" },
        ports: [{ port: 80, targetPort: 8080, name: "http" }],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.27.2.40 }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
  });
  grpcServer = new grpc.Server();
  grpcServer.addService(ECHO_SERVICE, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.concat([Buffer.from("echo:"), call.request])),
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (m: Buffer) => call.write(Buffer.concat([Buffer.from("re:"), m])));
      call.on("end", () => call.end());
    },
  });
  await new Promise<void>((resolve, reject) =>
    grpcServer.bindAsync(`${GRPC_POD}:50051`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  // A minimal WebSocket echo: accepts the upgrade, then echoes raw frames back unchanged.
  wsServer = createHttpServer();
  wsServer.on("upgrade", (req, socket) => {
    socket.on("error", () => {});
    const accept = createHash("sha1")
      .update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.pipe(socket);
  });
  wsServer.listen(8080, WS_POD);
  await once(wsServer, "listening");
}, 30_000);

afterAll(async () => {
  grpcServer?.forceShutdown();
  wsServer?.close();
  await t?.stop();
});

/** gRPC's length-prefixed message framing. */
const frame = (payload: string) => {
  const b = Buffer.from(payload);
  const out = Buffer.alloc(5 + b.length);
  out.writeUInt32BE(b.length, 1);
  b.copy(out, 5);
  return out;
};
function unframe(buf: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i + 5 <= buf.length; ) {
    const len = buf.readUInt32BE(i + 1);
    out.push(buf.subarray(i + 5, i + 5 + len).toString());
    i += 5 + len;
  }
  return out;
}

async function grpcCall(path: string, messages: string[]) {
  const socket = await socksConnect(
    { host: CLIENT, port: 15080 },
    { host: "grpc.demo.svc.cluster.local", port: 50051 },
    { localAddress: CLIENT },
  );
  socket.resume();
  socket.on("error", () => {});
  const session = h2connect("http://grpc.demo.svc.cluster.local:50051", {
    createConnection: () => socket as never,
  });
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  const chunks: Buffer[] = [];
  let status: string | undefined;
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("trailers", (t) => {
    status = String(t["grpc-status"]);
  });
  for (const m of messages) stream.write(frame(m));
  stream.end();
  await once(stream, "end");
  session.close();
  return { messages: unframe(Buffer.concat(chunks)), status };
}

describe("gRPC through the waypoint", () => {
  it("unary", async () => {
    const r = await grpcCall("/test.Echo/Unary", ["hello"]);
    expect(r).toEqual({ messages: ["echo:hello"], status: "0" });
    expect(
      logsWith(t.logs, {
        component: "access",
        path: "/test.Echo/Unary",
        protocol: "grpc",
        response_code: 200,
      }).length,
    ).toBe(1);
  });

  it("bidirectional streaming", async () => {
    expect(await grpcCall("/test.Echo/Chat", ["a", "b", "c"])).toEqual({
      messages: ["re:a", "re:b", "re:c"],
      status: "0",
    });
  });
});

describe("WebSocket through the waypoint", () => {
  it("upgrades and echoes frames", async () => {
    const s = await socksConnect(
      { host: CLIENT, port: 15080 },
      { host: "ws.demo.svc.cluster.local", port: 80 },
      { localAddress: CLIENT },
    );
    const key = randomBytes(16).toString("base64");
    s.write(
      `GET /chat HTTP/1.1\r\nHost: ws.demo.svc.cluster.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    s.resume();
    let got = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      got = Buffer.concat([got, c]);
    });
    const frameBytes = Buffer.from([0x81, 0x05, ...Buffer.from("hello")]);
    await eventually(() => expect(got.includes("\r\n\r\n")).toBe(true));
    expect(got.toString()).toMatch(/^HTTP\/1\.1 101 Switching Protocols/);
    const headEnd = got.indexOf("\r\n\r\n") + 4;
    s.write(frameBytes);
    await eventually(() => expect(got.subarray(headEnd)).toEqual(frameBytes));
    s.on("error", () => {});
    s.destroy();
  });
});
