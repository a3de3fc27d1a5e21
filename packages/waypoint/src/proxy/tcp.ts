// Opaque TCP through the waypoint (a tunnel whose bytes are not HTTP), in phases: authorize with L4
// fields → pick an endpoint through the cluster stage (balancer, circuit breaker) → connect
// upstream → copy both ways within the cluster's idle and duration limits → give the endpoint back
// and report istio_tcp_* metrics and an access-log line, with the fields ztunnel uses.

import type { Duplex } from "node:stream";
import { classify, hasCode, hostPort, type Logger, WaypointErrorCode, type Workload } from "@ambient/core";
import {
  type AccessLog,
  type AccessLogEntry,
  connectionLabels,
  copyBidirectional,
  isBenign,
  type MeteredConnection,
  type ProxyState,
  type TcpMetrics,
  workloadIdentity,
} from "@ambient/dataplane";
import type { L7Request } from "../model/request.js";
import { waypointError } from "./errors.js";
import type { StreamInfo } from "./http.js";
import type { EndpointPick, OpaqueConnectionLimits, Stages } from "./stages.js";
import { openUpstream, type UpstreamDeps, upstreamHost } from "./upstream.js";

export interface TcpContext {
  stages: () => Stages;
  upstream: UpstreamDeps;
  state: ProxyState;
  metrics: TcpMetrics;
  accessLog: AccessLog;
  logger: Logger;
}

/** Without a DestinationRule: Envoy's tcp_proxy idle_timeout (1 h, Istio's default too), no age limit. */
export const DEFAULT_OPAQUE_LIMITS: OpaqueConnectionLimits = {
  idleTimeoutMs: 3_600_000,
  maxConnectionDurationMs: Number.POSITIVE_INFINITY,
};

type LogFields = Omit<AccessLogEntry, "bytes_sent" | "bytes_recv" | "duration" | "error" | "response_flags">;

/** Who the downstream is and how its connection ends: an HBONE stream, or a gateway's client socket. */
export interface TcpPeer {
  address: string;
  port: number;
  /** Verified SPIFFE ID ("" for a client outside the mesh). */
  identity: string;
  /** What the client dialled, for the access log's dst.addr. */
  authority: string;
  /** Downstream was mutual TLS (HBONE); false at an ingress gateway. */
  mtls: boolean;
  /** Ends the downstream after a failure, the classifier's way (close or reset). */
  end(stream: Duplex, reason: unknown): void;
  /**
   * Where the bytes go when that is not the destination policy sees: an ingress gateway's
   * passthrough route (policy sees the gateway's port; the route names the service port).
   */
  target?: { host: string; port: number };
}

/** Forwards `stream` (after `head`, the bytes protocol detection read) to an endpoint of its destination. */
export function forwardTcp(
  ctx: TcpContext,
  stream: Duplex,
  info: StreamInfo,
  head: Buffer,
  tcpPeer: TcpPeer,
): void {
  const started = performance.now();
  const peer = tcpPeer.identity;
  const source = peer ? sourceWorkload(ctx.state, tcpPeer.address, peer) : undefined;
  let log: LogFields = {
    direction: "inbound",
    "src.addr": `${tcpPeer.address}:${tcpPeer.port}`,
    ...(peer ? { "src.identity": peer } : {}),
    ...(source ? { "src.workload": source.name, "src.namespace": source.namespace } : {}),
    "dst.addr": tcpPeer.authority,
  };
  // What metrics read: bytes from the client (received) and bytes back to it (sent).
  const counts = { bytesRead: 0, bytesWritten: 0 };
  let endpoint: EndpointPick | undefined;
  let metered: MeteredConnection | undefined;
  let finished = false;

  const finish = (err: unknown, failureMessage = "opaque TCP connection failed") => {
    if (finished) return;
    finished = true;
    const flag = err === undefined ? undefined : classify(err).flag;
    endpoint?.done(hasCode(err, WaypointErrorCode.UPSTREAM_CONNECT) ? { connectFailure: true } : {});
    let bytes = { received: 0, sent: 0 };
    if (metered) {
      if (flag) metered.labels.response_flags = flag;
      bytes = ctx.metrics.connectionClosed(metered);
    }
    ctx.accessLog.write(
      {
        ...log,
        bytes_sent: bytes.sent,
        bytes_recv: bytes.received,
        duration: Math.round(performance.now() - started),
        ...(flag ? { response_flags: flag } : {}),
      },
      err === undefined ? undefined : { error: err, message: failureMessage },
    );
  };

  const run = async (): Promise<void> => {
    const stages = ctx.stages();
    const l7 = tcpRequest(info);

    // Phase 1: L4 authorization (HTTP-only policy fields as istiod's TCP filter reads them).
    const authz = stages.authorizeTcp(l7);
    if (!authz.allowed) throw waypointError(WaypointErrorCode.DENIED, `denied: ${authz.reason}`);

    // Phase 2: an endpoint, admitted by the cluster's maxConnections.
    const target = {
      ...(tcpPeer.target ?? { host: info.destination.host, port: info.destination.port }),
      opaque: true,
    };
    const picked = stages.pick(l7, target);
    if (!picked.ok) throw picked.error;
    endpoint = picked.endpoint;
    const ep = picked.endpoint;
    log = { ...log, ...destinationFields(ep, picked.service?.hostname) };

    // Phase 3: connect (bounded by connectionPool.tcp.connectTimeout).
    const up = await openUpstream(ctx.upstream, ep, {});
    if (stream.destroyed) {
      up.destroy();
      throw waypointError(WaypointErrorCode.DOWNSTREAM_CLOSED, "the tunnel closed while connecting upstream");
    }

    // Phase 4: bytes both ways, cut at the idle timeout or the maximum duration.
    metered = ctx.metrics.connectionOpened(
      connectionLabels({
        reporter: "waypoint",
        source,
        sourcePrincipal: peer,
        destination: ep.workload,
        service: picked.service,
        mtls: tcpPeer.mtls,
      }),
      counts,
      false,
    );
    let cutBecause: Error | undefined;
    const cut = (reason: Error) => {
      cutBecause ??= reason;
      up.destroy(reason);
    };
    const limits = ep.opaque ?? DEFAULT_OPAQUE_LIMITS;
    const idle = timer(limits.idleTimeoutMs, () =>
      cut(
        waypointError(WaypointErrorCode.IDLE_TIMEOUT, `no bytes either way for ${limits.idleTimeoutMs} ms`),
      ),
    );
    const age = timer(limits.maxConnectionDurationMs, () =>
      cut(
        waypointError(
          WaypointErrorCode.MAX_DURATION,
          `open for maxConnectionDuration (${limits.maxConnectionDurationMs} ms)`,
        ),
      ),
    );
    if (head.length > 0) {
      counts.bytesRead += head.length;
      up.write(head);
    }
    const copy = copyBidirectional(stream, up);
    // After the copy's pipes are attached: a 'data' listener alone would start the flow without them.
    stream.on("data", (c: Buffer) => {
      counts.bytesRead += c.length;
      idle?.refresh();
    });
    up.on("data", (c: Buffer) => {
      counts.bytesWritten += c.length;
      idle?.refresh();
    });
    const { error } = await copy;
    if (idle) clearTimeout(idle);
    if (age) clearTimeout(age);
    finish(cutBecause ?? (error && !isBenign(error) ? error : undefined));
  };

  run().catch((err: unknown) => {
    tcpPeer.end(stream, err);
    finish(err, "opaque TCP connection refused");
  });
}

/** The request L4 policy and the cluster stage see: no method, path or headers. */
function tcpRequest(info: StreamInfo): L7Request {
  return {
    method: "",
    scheme: "tcp",
    authority: "",
    path: "",
    headers: {},
    port: info.destination.port,
    protocol: "http/1.1",
    source: { ip: info.sourceIp, principal: info.sourcePrincipal },
    destination: info.destination,
  };
}

function destinationFields(ep: EndpointPick, service: string | undefined): Partial<LogFields> {
  const w = ep.workload;
  // A PASSTHROUGH service's original destination: no workload, and "dst.addr" already names it.
  if (!w) return service ? { "dst.service": service } : {};
  return {
    ...(service ? { "dst.service": service } : {}),
    ...(w.tunnelProtocol === "HBONE" ? { "dst.hbone_addr": hostPort(upstreamHost(ep), 15008) } : {}),
    "dst.workload": w.name,
    "dst.namespace": w.namespace,
    "dst.identity": workloadIdentity(w).toString(),
  };
}

/** The source workload, when its address is known and it holds the identity it presented. */
function sourceWorkload(state: ProxyState, ip: string, peer: string): Workload | undefined {
  const w = state.workloadByIp(ip);
  return w && workloadIdentity(w).toString() === peer ? w : undefined;
}

/** An unref'd timer, or none for an infinite limit. */
function timer(ms: number, fire: () => void): NodeJS.Timeout | undefined {
  if (!Number.isFinite(ms)) return undefined;
  const t = setTimeout(fire, ms);
  t.unref();
  return t;
}
