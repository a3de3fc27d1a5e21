// Builders for HBONE tests: a mesh CA with workload certificates, an HBONE server on 127.0.0.1:0
// whose streams reach a TCP echo server, and a cleanup list so every socket closes after each test.
// Internal to core's tests; not exported from the package.

import type { ServerHttp2Stream } from "node:http2";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream";
import type { CertificateAuthority, WorkloadCertificate } from "../ca/authority.js";
import { createTestRoot, type TestCa, testIdentity } from "../ca/testing.js";
import type { SpiffeId } from "../identity/spiffe.js";
import { createMemoryLogger } from "../telemetry/logging.js";
import {
  createHboneServer,
  type HboneRequest,
  type HboneServer,
  type HboneServerOptions,
  respondStatus,
} from "./server.js";

export interface TestMesh {
  root: TestCa;
  ca: CertificateAuthority;
  roots: string[];
  serverId: SpiffeId;
  clientId: SpiffeId;
  serverCert: WorkloadCertificate;
  clientCert: WorkloadCertificate;
}

export async function createTestMesh(trustDomain = "cluster.local"): Promise<TestMesh> {
  const root = await createTestRoot({ trustDomain });
  const ca = await root.toAuthority();
  const serverId = testIdentity("backend", "server", trustDomain);
  const clientId = testIdentity("frontend", "client", trustDomain);
  return {
    root,
    ca,
    roots: ca.rootCertsPem,
    serverId,
    clientId,
    serverCert: await ca.issueWorkloadCertificate(serverId),
    clientCert: await ca.issueWorkloadCertificate(clientId),
  };
}

/** A certificate straight from a TestCa (any validity, any SAN), shaped as a WorkloadCertificate. */
export async function leafCertificate(
  ca: TestCa,
  identity: SpiffeId,
  opts: { notBefore?: Date; notAfter?: Date; uris?: string[] } = {},
): Promise<WorkloadCertificate> {
  const leaf = await ca.issueLeaf({ identity, ...opts });
  return {
    identity,
    certChainPem: leaf.certChainPem,
    privateKeyPem: leaf.privateKeyPem,
    serial: leaf.serial,
    notAfter: opts.notAfter ?? new Date(Date.now() + 3600_000),
  };
}

/** Runs registered closers in reverse order; call `run()` in afterEach. */
export class Cleanup {
  readonly #fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    const fns = this.#fns.splice(0).reverse();
    for (const fn of fns) await fn();
  }
}

/** Listens on 127.0.0.1:0; cleanup also destroys accepted sockets, which would hold close(). */
export function listen(server: Server, cleanup: Cleanup): Promise<number> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  cleanup.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

/** A TCP server that writes back what it reads and half-closes when its peer does. */
export async function startEchoServer(cleanup: Cleanup): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => {});
    socket.pipe(socket);
  });
  return listen(server, cleanup);
}

/** An onStream that answers 200 and pipes the tunnel to 127.0.0.1:`port`. */
export function pipeTo(port: number): (stream: ServerHttp2Stream) => void {
  return (stream) => {
    const upstream = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    upstream.once("connect", () => {
      respondStatus(stream, 200);
      pipeline(stream, upstream as Duplex, stream, () => {});
    });
    upstream.once("error", () => respondStatus(stream, 503));
  };
}

export interface StartedHbone {
  hbone: HboneServer;
  port: number;
  destination: { host: string; port: number };
  requests: HboneRequest[];
  records: Record<string, unknown>[];
}

export async function startHboneServer(
  mesh: TestMesh,
  cleanup: Cleanup,
  opts: Partial<HboneServerOptions> & { onStream: HboneServerOptions["onStream"] },
): Promise<StartedHbone> {
  const { logger, records } = createMemoryLogger("debug");
  const requests: HboneRequest[] = [];
  const onStream = opts.onStream;
  const hbone = createHboneServer({
    certificate: () => mesh.serverCert,
    rootsPem: () => mesh.roots,
    trustDomain: mesh.ca.trustDomain,
    logger,
    ...opts,
    onStream: (stream, request) => {
      requests.push(request);
      onStream(stream, request);
    },
  });
  cleanup.add(() => hbone.destroy());
  const port = await new Promise<number>((resolve, reject) => {
    hbone.server.once("error", reject);
    hbone.server.listen(0, "127.0.0.1", () => resolve((hbone.server.address() as AddressInfo).port));
  });
  return { hbone, port, destination: { host: "127.0.0.1", port }, requests, records };
}

/** Reads a Duplex to its end. */
export function readAll(stream: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("error", reject);
  });
}

export { eventually } from "../time/eventually.js";
