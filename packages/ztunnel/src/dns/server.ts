// ztunnel's DNS proxy (Istio's ztunnel `dns_proxy`, port 15053 in every captured pod): answers
// the mesh's names from xDS state (answer.ts) and forwards the rest to the node's resolver
// (forward.ts). `DnsProxy` is the node-wide part; `DnsListeners` one pod's UDP socket and TCP
// listener, opened through the socket factory like the pod's other listeners.

import type { Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { Counter, errorMessage, type Logger, type Registry } from "@ambient/core";
import type { ProxyState } from "@ambient/dataplane";
import type { Answer } from "dns-packet";
import { PORTS } from "../proxy/ports.js";
import type { PodRef, SocketFactory } from "../proxy/socket-factory.js";
import { ANSWER_TTL_SECONDS, answerFor } from "./answer.js";
import { forward, type Transport, type Upstream } from "./forward.js";
import { errorResponse, localResponse, parseQuery, Rcode } from "./message.js";
import { TcpFrames } from "./tcp-frames.js";

/** A client that opens a TCP connection and goes quiet: RFC 7766 §6.2.3 suggests seconds; CoreDNS uses 10 s. */
const TCP_IDLE_MS = 10_000;
/** Queries one TCP connection may have in flight; the rest wait in the socket (backpressure). */
const TCP_MAX_IN_FLIGHT = 16;
/**
 * UDP queries one pod may have in flight (mostly forwarded ones waiting for the upstream); past
 * it new ones are dropped, as a loaded resolver drops, and the client retries.
 */
const UDP_MAX_IN_FLIGHT = 256;

export interface DnsProxyOptions {
  state: ProxyState;
  upstream: Upstream;
  /** An upstream that has not answered by then gets the client a SERVFAIL. glibc retries after 5 s. */
  upstreamTimeoutMs: number;
  registry: Registry;
  logger: Logger;
}

/** How a query ended, the `outcome` label of istio_dns_requests_total. */
type Outcome = "local" | "forwarded" | "upstream_failure" | "formerr" | "notimp" | "dropped";

class DnsMetrics {
  readonly requests: Counter<"request_type" | "outcome" | "transport">;
  readonly upstreamRequests: Counter<"request_type">;
  readonly upstreamFailures: Counter<"request_type">;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: "istio_dns_requests_total",
      help: "DNS queries received by the DNS proxy",
      labelNames: ["request_type", "outcome", "transport"],
      registers: [registry],
    });
    this.upstreamRequests = new Counter({
      name: "istio_dns_upstream_requests_total",
      help: "DNS queries forwarded to the upstream resolver",
      labelNames: ["request_type"],
      registers: [registry],
    });
    this.upstreamFailures = new Counter({
      name: "istio_dns_upstream_failures_total",
      help: "forwarded DNS queries the upstream did not answer",
      labelNames: ["request_type"],
      registers: [registry],
    });
  }
}

export class DnsProxy {
  private readonly metrics: DnsMetrics;

  constructor(private readonly opts: DnsProxyOptions) {
    this.metrics = new DnsMetrics(opts.registry);
  }

  get upstream(): Upstream {
    return this.opts.upstream;
  }

  /** The answer to one query from `pod`, or undefined when it gets none (no header to answer to). */
  async handle(pod: PodRef, bytes: Buffer, transport: Transport): Promise<Buffer | undefined> {
    const parsed = parseQuery(bytes);
    if (!parsed.ok) {
      const outcome: Outcome = !parsed.header
        ? "dropped"
        : parsed.rcode === Rcode.NOTIMP
          ? "notimp"
          : "formerr";
      this.count("none", outcome, transport);
      this.opts.logger.debug(
        { pod: `${pod.namespace}/${pod.name}`, transport, bytes: bytes.length, reason: parsed.reason },
        parsed.header ? "malformed DNS query answered with an error" : "malformed DNS packet dropped",
      );
      return parsed.header ? errorResponse(parsed.header, parsed.rcode) : undefined;
    }
    const { question } = parsed;
    const type = String(question.type);
    const local =
      question.class === "IN" || question.class === undefined
        ? answerFor(this.opts.state, question.name, type, { namespace: pod.namespace })
        : { kind: "forward" as const };
    if (local.kind === "known") {
      this.count(type, "local", transport);
      const answers = local.addresses.map(
        (ip): Answer => ({
          name: question.name,
          type: ip.includes(":") ? "AAAA" : "A",
          class: "IN",
          ttl: ANSWER_TTL_SECONDS,
          data: ip,
        }),
      );
      return localResponse(parsed, Rcode.NOERROR, answers, transport === "udp");
    }
    this.metrics.upstreamRequests.inc({ request_type: metricType(type) });
    try {
      const answer = await forward(this.opts.upstream, transport, bytes, this.opts.upstreamTimeoutMs);
      this.count(type, "forwarded", transport);
      return answer;
    } catch (err) {
      this.metrics.upstreamFailures.inc({ request_type: metricType(type) });
      this.count(type, "upstream_failure", transport);
      this.opts.logger.info(
        { pod: `${pod.namespace}/${pod.name}`, name: question.name, type, err: errorMessage(err) },
        "DNS upstream failed; answering SERVFAIL",
      );
      return errorResponse(parsed.header, Rcode.SERVFAIL, question);
    }
  }

  /** A query not even read: the pod's UDP queries in flight are at their bound. */
  dropped(transport: Transport): void {
    this.count("none", "dropped", transport);
  }

  private count(type: string, outcome: Outcome, transport: Transport): void {
    this.metrics.requests.inc({ request_type: metricType(type), outcome, transport });
  }
}

/** Bounded label values: the common types by name, the rest as "other". */
function metricType(type: string): string {
  return ["A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "MX", "HTTPS", "none"].includes(type) ? type : "other";
}

/** One pod's DNS listeners: UDP and TCP on 15053. */
export class DnsListeners {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<Socket>();

  constructor(
    private readonly proxy: DnsProxy,
    private readonly sockets: SocketFactory,
    private readonly pod: PodRef,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    if (!this.sockets.listenUdp) throw new Error("this socket factory cannot open UDP listeners");
    const udp = await this.sockets.listenUdp(this.pod, PORTS.dns);
    this.udp = udp;
    udp.on("error", (err) => this.logger.warn({ err: errorMessage(err) }, "DNS UDP socket error"));
    let inFlight = 0;
    udp.on("message", (msg, rinfo) => {
      if (inFlight >= UDP_MAX_IN_FLIGHT) {
        this.proxy.dropped("udp");
        return;
      }
      inFlight++;
      this.proxy
        .handle(this.pod, msg, "udp")
        .then((answer) => answer && udp.send(answer, rinfo.port, rinfo.address))
        .catch((err) => this.logger.warn({ err: errorMessage(err) }, "DNS query failed"))
        .finally(() => inFlight--);
    });
    // allowHalfOpen: a client may send its queries and shut its side; the answers still go out.
    const tcp = createServer({ allowHalfOpen: true }, (socket) => this.serveTcp(socket));
    this.tcp = tcp;
    await this.sockets.listen(tcp, this.pod, PORTS.dns);
  }

  close(): void {
    try {
      this.udp?.close();
    } catch {
      // Already closed (a failed bind closes it).
    }
    this.tcp?.close();
    for (const s of this.connections) s.destroy();
  }

  /**
   * Length-prefixed queries, several per connection, answered as they complete (RFC 7766
   * §6.2.1.1). At most TCP_MAX_IN_FLIGHT are handled at once; the rest wait in a queue while the
   * socket is paused, so one connection never holds more than a read's worth of queries.
   */
  private serveTcp(socket: Socket): void {
    this.connections.add(socket);
    socket.once("close", () => this.connections.delete(socket));
    socket.on("error", () => {});
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    const frames = new TcpFrames();
    const queued: Buffer[] = [];
    let inFlight = 0;
    let ended = false;
    const pump = () => {
      while (queued.length > 0 && inFlight < TCP_MAX_IN_FLIGHT && !socket.destroyed) {
        inFlight++;
        this.proxy
          .handle(this.pod, queued.shift()!, "tcp")
          .then((answer) => {
            if (answer && !socket.destroyed) socket.write(TcpFrames.frame(answer));
            // A query we cannot even answer FORMERR to: the stream's framing is all we trust.
            else if (!answer) socket.destroy();
          })
          .catch(() => socket.destroy())
          .finally(() => {
            inFlight--;
            pump();
          });
      }
      if (socket.destroyed) return;
      if (queued.length > 0) socket.pause();
      else if (ended && inFlight === 0) socket.end();
      else socket.resume();
    };
    socket.on("data", (chunk) => {
      queued.push(...frames.push(chunk));
      pump();
    });
    socket.on("end", () => {
      ended = true;
      pump();
    });
  }
}
