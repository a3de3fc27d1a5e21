// In-pod mode (CNI): a pod's listeners and the sockets ztunnel opens for it live inside the pod's
// network namespace, so the pod's own iptables rules capture its traffic into them, as Istio's
// ztunnel does. @ambient/netns creates them there on its helper thread; Node then drives them like
// any other socket. Pods without a netns (and node-level dials) use plain sockets.

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, isIP, Socket, type SocketConstructorOpts } from "node:net";
import { AmbientError, ErrorCode } from "@ambient/core";
import { Netns, originalDestination } from "@ambient/netns";
import { bindUdp, type Listenable, type PodRef, type SocketFactory } from "./socket-factory.js";

/**
 * SO_MARK on every socket ztunnel makes inside a pod; the in-pod rules let packets with
 * 0x539/0xfff through uncaptured (Istio's value: without it our own dials would loop into 15001).
 */
export const ZTUNNEL_MARK = 0x539;

/** Istio's in-pod listener addresses, which its capture rules depend on. */
export function inPodListenHost(port: number, ipv6 = false): string {
  switch (port) {
    // Inbound capture and HBONE: REDIRECT in PREROUTING rewrites the destination to the address of
    // the interface the packet came in on (the pod's eth0 IP), and peers dial the pod IP directly.
    case 15006:
    case 15008:
      return ipv6 ? "::" : "0.0.0.0";
    // Outbound capture (REDIRECT in OUTPUT goes to 127.0.0.1), SOCKS5 and anything else: only the
    // pod's own processes should reach them.
    default:
      return ipv6 ? "::1" : "127.0.0.1";
  }
}

export interface NetnsSocketFactoryOptions {
  /** SO_MARK for sockets made inside a pod (default ZTUNNEL_MARK; 0 = unmarked). */
  mark?: number;
}

export class NetnsSocketFactory implements SocketFactory {
  private readonly mark: number;
  /** One open namespace per pod uid: reopening the path for every dial would cost a syscall each. */
  private readonly namespaces = new Map<string, Netns>();

  constructor(options: NetnsSocketFactoryOptions = {}) {
    this.mark = options.mark ?? ZTUNNEL_MARK;
  }

  listen(server: Listenable, pod: PodRef, port: number): Promise<void> {
    return adopt(server, () => {
      if (!pod.netns) {
        throw new AmbientError(
          ErrorCode.LISTEN_FAILED,
          `cannot listen on port ${port} for pod ${pod.namespace}/${pod.name}: it has no netns`,
          { details: { pod: `${pod.namespace}/${pod.name}`, port } },
        );
      }
      return this.netns(pod, pod.netns).listen(inPodListenHost(port, isIP(pod.ip) === 6), port);
    });
  }

  /** The pod's DNS proxy socket, on the pod's loopback where the port-53 capture redirects to. */
  async listenUdp(pod: PodRef, port: number): Promise<UdpSocket> {
    if (!pod.netns) {
      throw new AmbientError(
        ErrorCode.LISTEN_FAILED,
        `cannot listen on UDP port ${port} for pod ${pod.namespace}/${pod.name}: it has no netns`,
        { details: { pod: `${pod.namespace}/${pod.name}`, port } },
      );
    }
    const ipv6 = isIP(pod.ip) === 6;
    const fd = this.netns(pod, pod.netns).bindUdp(inPodListenHost(port, ipv6), port);
    const socket = createSocket(ipv6 ? "udp6" : "udp4");
    await bindUdp(socket, { fd });
    return socket;
  }

  /**
   * ztunnel's own ports (admin, metrics, readiness) in its own netns, with SO_REUSEPORT like the
   * pods' listeners: during a rollout the new ztunnel binds them while the old one still serves.
   */
  listenNode(server: Listenable, host: string, port: number): Promise<void> {
    return adopt(server, () => {
      const own = Netns.open("/proc/self/ns/net");
      try {
        return own.listen(host, port);
      } finally {
        own.close();
      }
    });
  }

  connect(pod: PodRef | undefined, target: { host: string; port: number }): Socket {
    if (!pod?.netns) {
      // The node's own context (no pod, or a pod not captured): a plain socket in ztunnel's netns.
      return connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    }
    const ipv6 = isIP(target.host) === 6;
    let fd: number;
    try {
      fd = this.netns(pod, pod.netns).socket(ipv6, this.mark);
    } catch (err) {
      // Callers expect connection failures as an 'error' event on the returned socket.
      const failed = new Socket();
      process.nextTick(() => failed.destroy(err as Error));
      return failed;
    }
    // manualStart (internal, used by child_process for its stdio since Node 0.x, so missing from
    // the typings): the fd is not connected yet, and reading now would fail with ENOTCONN. connect()
    // reuses the handle (and so the pod's netns and mark) as long as Node never has to pick among
    // several resolved addresses, which would make fresh sockets: hence no autoSelectFamily and a
    // fixed family (targets are IPs in practice).
    const socket = new Socket({ fd, manualStart: true, allowHalfOpen: true } as SocketConstructorOpts);
    socket.setNoDelay(true);
    return socket.connect({
      host: target.host,
      port: target.port,
      family: ipv6 ? 6 : 4,
      autoSelectFamily: false,
    });
  }

  connectToApp(pod: PodRef, target: { host: string; port: number }): Socket {
    // From inside the pod's netns, marked: the pod's capture rules let it reach the app directly.
    return this.connect(pod, target);
  }

  originalDestination(socket: Socket): { host: string; port: number } | undefined {
    // biome-ignore lint/suspicious/noExplicitAny: Node exposes the fd only on the internal handle.
    const fd = (socket as any)._handle?.fd;
    if (typeof fd !== "number" || fd < 0) return undefined;
    return originalDestination(fd);
  }

  release(pod: PodRef): void {
    // Sockets already made keep their namespace alive on their own.
    this.namespaces.get(pod.uid)?.close();
    this.namespaces.delete(pod.uid);
  }

  /** Closes every cached namespace (ztunnel shutting down). */
  close(): void {
    for (const ns of this.namespaces.values()) ns.close();
    this.namespaces.clear();
  }

  private netns(pod: PodRef, path: string): Netns {
    const cached = this.namespaces.get(pod.uid);
    if (cached && cached.path === path) return cached;
    // A new path for the same uid: the pod's sandbox was recreated.
    cached?.close();
    this.namespaces.delete(pod.uid);
    const ns = Netns.open(path);
    this.namespaces.set(pod.uid, ns);
    return ns;
  }
}

/** Hands a listening fd made by `make` to a Node server (net, tls and http2 servers all adopt one). */
function adopt(server: Listenable, make: () => number): Promise<void> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = make();
    } catch (err) {
      reject(err);
      return;
    }
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    // server.close() closes the fd.
    server.listen({ fd }, () => {
      server.removeListener("error", onError);
      resolve();
    });
  });
}
