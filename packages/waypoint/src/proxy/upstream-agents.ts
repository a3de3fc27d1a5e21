// HTTP/1.1 keep-alive toward endpoints, as Envoy's upstream connection pool: one http.Agent per
// endpoint and port, whose connections are the byte streams openUpstream makes (an HBONE CONNECT
// stream to the endpoint's ztunnel, or TCP outside the mesh). Without it every request paid for a
// new HBONE stream and a new TCP connection from the destination ztunnel to the app.

import { Agent, type AgentOptions, type ClientRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { UpstreamConnectionPolicy } from "./stages.js";
import { asByteStream } from "./stream-adapter.js";
import { openUpstream, type UpstreamDeps, type UpstreamTarget, upstreamHost } from "./upstream.js";

/** Offered when the waypoint originates TLS: these connections carry HTTP/1.1. */
const HTTP1_ALPN = ["http/1.1"];

/** Idle pooled connections close after this (Envoy's default upstream idle timeout is 1 h; apps'
 * own keep-alive timeouts, e.g. Node's 5 s, usually end them first). */
export const UPSTREAM_IDLE_TIMEOUT_MS = 60_000;
/** Without a DestinationRule: unlimited requests per connection, idle close after 60 s. */
const DEFAULT_POLICY: UpstreamConnectionPolicy = {
  maxRequestsPerConnection: Number.POSITIVE_INFINITY,
  idleTimeoutMs: UPSTREAM_IDLE_TIMEOUT_MS,
};
/** Closed this long before the app's announced keep-alive timeout (Node's agent: 1 s). */
const HINT_MARGIN_MS = 1_000;
/** Idle connections kept per endpoint. */
const MAX_FREE_PER_ENDPOINT = 32;

class EndpointAgent extends Agent {
  /** Requests each connection has carried, for maxRequestsPerConnection. */
  private readonly served = new WeakMap<Socket, number>();
  /** When each connection was made, for maxConnectionDuration. */
  private readonly born = new WeakMap<Duplex, number>();
  /** Connections sitting in the pool, waiting for a request. */
  private readonly idle = new WeakSet<Duplex>();
  /** The app's `Keep-Alive: timeout=` on the last response of a connection, in ms. */
  readonly hints = new WeakMap<Duplex, number>();

  constructor(
    private readonly deps: UpstreamDeps,
    private readonly target: UpstreamTarget,
    private readonly policy: UpstreamConnectionPolicy,
    options: AgentOptions,
  ) {
    super(options);
    // Node's Agent asks keepSocketAlive whether to pool a socket; @types/node types the answer as
    // void, so the override is installed here rather than declared.
    const keepSocketAlive = Agent.prototype.keepSocketAlive as unknown as (this: Agent, s: Socket) => boolean;
    Object.assign(this, {
      keepSocketAlive: (socket: Socket): boolean => {
        const served = (this.served.get(socket) ?? 0) + 1;
        this.served.set(socket, served);
        // The app already ended its side (its FIN came with or right after the response): a request
        // sent on it would reach a closed socket and never be answered.
        if (socket.readableEnded || socket.destroyed) return false;
        // Past maxConnectionDuration a connection finishes its request and is closed, as Envoy
        // drains it; one that is younger waits in the pool until idle or that age, whichever first.
        const lifeLeft = this.lifeLeft(socket);
        if (lifeLeft <= 0 || served >= this.policy.maxRequestsPerConnection) return false;
        if (!keepSocketAlive.call(this, socket)) return false;
        // ... or until 1 s before the app said it would close (its Keep-Alive hint, which Node's
        // agent itself only reads when it has a timeout of its own). The agent destroys a pooled
        // socket on 'timeout'; Agent's own `timeout` option would arm it, with a listener, on every
        // request.
        const hint = this.hints.get(socket);
        const wait = Math.min(
          this.policy.idleTimeoutMs,
          lifeLeft,
          hint === undefined ? Number.POSITIVE_INFINITY : hint - HINT_MARGIN_MS,
        );
        if (wait <= 0) return false;
        if (Number.isFinite(wait)) socket.setTimeout(wait);
        this.idle.add(socket);
        return true;
      },
    });
  }

  override reuseSocket(socket: Socket, request: ClientRequest): void {
    this.idle.delete(socket);
    socket.setTimeout(0);
    super.reuseSocket(socket, request);
  }

  /** Closes every pooled connection now (one of them turned out dead: its siblings likely are too). */
  dropIdle(): void {
    for (const list of Object.values(this.freeSockets)) for (const s of [...(list ?? [])]) s.destroy();
  }

  // node:http accepts a connection handed over later through the callback (return nothing now).
  override createConnection(
    _options: unknown,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex {
    openUpstream(this.deps, this.target, {}, HTTP1_ALPN).then(
      (stream) => {
        const socket = asByteStream(stream);
        this.born.set(socket, performance.now());
        // The app closing a pooled connection (its keep-alive timeout, a restart) reaches us as the
        // end of the stream. A pooled socket has nobody reading it, so nothing else would notice:
        // it leaves the pool at once, and ztunnel gets our end too and closes its side.
        socket.on("end", () => {
          if (this.idle.has(socket)) socket.destroy();
        });
        callback?.(null, socket);
      },
      (err: Error) => callback?.(err, undefined as never),
    );
    return undefined as never;
  }

  private lifeLeft(socket: Duplex): number {
    const max = this.policy.maxConnectionDurationMs ?? Number.POSITIVE_INFINITY;
    const born = this.born.get(socket);
    if (!Number.isFinite(max) || born === undefined) return max;
    return max - (performance.now() - born);
  }
}

export class UpstreamAgents {
  private readonly agents = new Map<string, EndpointAgent>();

  constructor(private readonly deps: UpstreamDeps) {}

  /** The agent for an endpoint under a connection policy; requests through it reuse its idle connections. */
  agentFor(target: UpstreamTarget, policy: UpstreamConnectionPolicy = DEFAULT_POLICY): Agent {
    const key = this.key(target, policy);
    let agent = this.agents.get(key);
    if (!agent) {
      this.prune();
      agent = new EndpointAgent(this.deps, target, policy, {
        // maxRequestsPerConnection 1 is Istio's way to turn keep-alive off.
        keepAlive: policy.maxRequestsPerConnection !== 1,
        maxFreeSockets: MAX_FREE_PER_ENDPOINT,
        scheduling: "lifo",
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Notes the app's keep-alive hint of a response, for when its connection goes back to the pool. */
  noteResponse(agent: Agent, res: IncomingMessage): void {
    const hint = /^timeout=(\d+)/.exec(String(res.headers["keep-alive"] ?? ""))?.[1];
    if (hint !== undefined && agent instanceof EndpointAgent)
      agent.hints.set(res.socket, Number(hint) * 1000);
  }

  /** Closes the idle pooled connections of an endpoint (a request on one of them found it dead). */
  dropIdle(target: UpstreamTarget, policy: UpstreamConnectionPolicy = DEFAULT_POLICY): void {
    this.agents.get(this.key(target, policy))?.dropIdle();
  }

  /**
   * Forgets agents holding no connection and no queued request: endpoints come and go (pods,
   * DestinationRule edits), and an agent per endpoint ever seen would only grow.
   */
  private prune(): void {
    const empty = (d: NodeJS.ReadOnlyDict<unknown>) => Object.keys(d).length === 0;
    for (const [key, agent] of this.agents)
      if (empty(agent.sockets) && empty(agent.freeSockets) && empty(agent.requests)) this.agents.delete(key);
  }

  private key(target: UpstreamTarget, policy: UpstreamConnectionPolicy): string {
    // The workload uid too: a new pod that reuses an IP must not inherit the old one's connections.
    // The policy too: a DestinationRule edit applies to new connections, as in Envoy.
    return [
      target.workload?.uid ?? "",
      upstreamHost(target),
      target.port,
      target.workload?.tunnelProtocol ?? "",
      policy.maxRequestsPerConnection,
      policy.idleTimeoutMs,
      policy.maxConnectionDurationMs,
      target.connectTimeoutMs,
      JSON.stringify(target.keepalive ?? null),
      JSON.stringify(target.tls ?? null),
    ].join("|");
  }

  /** Closes every pooled connection (the waypoint is stopping). */
  destroy(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
