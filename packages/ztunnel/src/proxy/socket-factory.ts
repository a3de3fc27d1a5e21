// Where a pod's listeners and a pod's outbound sockets live. Local mode binds on the pod's own
// loopback address; in-pod mode (CNI) creates the sockets inside the pod's network namespace.
// Everything above this seam is the same in both modes.

import { createSocket, type SocketOptions, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";

export interface PodRef {
  uid: string;
  name: string;
  namespace: string;
  /** The pod's IP as text. */
  ip: string;
  /** In-pod mode: path of the pod's network namespace (its listeners and sockets live there). */
  netns?: string;
}

/** Anything with Node's `listen` (net, tls and http2 servers all qualify). */
export interface Listenable {
  listen(options: { host?: string; port?: number; fd?: number }, callback?: () => void): unknown;
  once(event: "error", listener: (err: Error) => void): unknown;
  removeListener(event: "error", listener: (err: Error) => void): unknown;
}

export interface SocketFactory {
  /** Starts `server` listening on `port` in the pod's network context. */
  listen(server: Listenable, pod: PodRef, port: number): Promise<void>;
  /** A UDP socket bound on `port` in the pod's network context (the DNS proxy's 15053). */
  listenUdp?(pod: PodRef, port: number): Promise<UdpSocket>;
  /** A TCP connection made on behalf of `pod` (its source address), or of the node when absent. */
  connect(pod: PodRef | undefined, target: { host: string; port: number }): Socket;
  /**
   * A connection to `pod`'s own app (inbound delivery). Local mode dials from the node address; in
   * in-pod mode it is made inside the pod's netns, marked so capture lets it through.
   */
  connectToApp(pod: PodRef, target: { host: string; port: number }): Socket;
  /**
   * Where a captured connection (15001 outbound, 15006 inbound) was going: SO_ORIGINAL_DST in a
   * pod's netns. Undefined when the factory cannot know (local mode has no capture).
   */
  originalDestination(socket: Socket): { host: string; port: number } | undefined;
  /** The pod is gone or moved to another netns: let go of whatever is cached for it. */
  release(pod: PodRef): void;
  /** ztunnel is stopping: close whatever the factory holds. */
  close?(): void;
  /**
   * ztunnel's node-level ports (admin, metrics, readiness), when the factory binds them itself
   * (in-pod mode: SO_REUSEPORT, so a new ztunnel can start before the old one is gone).
   */
  listenNode?(server: Listenable, host: string, port: number): Promise<void>;
}

/** Local mode: every pod has its own 127.x address on the host's loopback. */
export class LocalSocketFactory implements SocketFactory {
  /** `reusePort`: every listener with SO_REUSEPORT (ZtunnelConfig.reusePort; Node ≥ 22.12). */
  constructor(
    private readonly nodeIp: string,
    private readonly reusePort = false,
  ) {}

  listen(server: Listenable, pod: PodRef, port: number): Promise<void> {
    return this.bind(server, pod.ip, port);
  }

  listenNode(server: Listenable, host: string, port: number): Promise<void> {
    return this.bind(server, host, port);
  }

  async listenUdp(pod: PodRef, port: number): Promise<UdpSocket> {
    const type = pod.ip.includes(":") ? "udp6" : "udp4";
    // As for TCP: `reusePort` (Node >= 22.12) is missing from Node 20's typings and only set when asked.
    const socket = createSocket((this.reusePort ? { type, reusePort: true } : { type }) as SocketOptions);
    await bindUdp(socket, { address: pod.ip, port });
    return socket;
  }

  private bind(server: Listenable, host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once("error", onError);
      // `reusePort` is missing from Node 20's typings; only set when asked, so older Nodes see nothing new.
      const options = this.reusePort ? { host, port, reusePort: true } : { host, port };
      server.listen(options, () => {
        server.removeListener("error", onError);
        resolve();
      });
    });
  }

  originalDestination(): undefined {
    return undefined;
  }

  release(): void {}

  connectToApp(_pod: PodRef, target: { host: string; port: number }): Socket {
    return this.connect(undefined, target);
  }

  connect(pod: PodRef | undefined, target: { host: string; port: number }): Socket {
    // The source address is the pod's, as it is when ztunnel dials from inside the pod's netns:
    // the peer's policy sees the pod IP, not the node's.
    return connect({
      host: target.host,
      port: target.port,
      localAddress: pod?.ip ?? this.nodeIp,
      noDelay: true,
      allowHalfOpen: true,
    });
  }
}

/** Binds a UDP socket (to an address, or adopting a bound fd); a failed bind closes the socket. */
export function bindUdp(
  socket: UdpSocket,
  options: { address?: string; port?: number; fd?: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once("error", onError);
    socket.bind(options, () => {
      socket.removeListener("error", onError);
      resolve();
    });
  });
}
