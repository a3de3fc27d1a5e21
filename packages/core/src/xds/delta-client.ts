// Delta ADS client, as ztunnel and waypoints use it: one stream carrying every subscribed type.
// Each response is decoded as a whole and then applied and ACKed, or NACKed with the previous
// state kept. After a reconnect it reports the versions it holds so only changes come back.

import { EventEmitter } from "node:events";
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  type StatusObject,
  status,
} from "@grpc/grpc-js";
import { AmbientError, ErrorCode, errorMessage, findCode } from "../errors/errors.js";
import type { Logger } from "../telemetry/logging.js";
import { Backoff } from "../time/timers.js";
import { protos } from "./proto.js";
import {
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  nodeToWire,
  type WireResource,
  type XdsNode,
} from "./wire.js";

export interface XdsChanges<T> {
  upserts: Map<string, T>;
  removes: string[];
}

export interface XdsResourceHandler<T> {
  readonly typeUrl: string;
  /** Resource names to subscribe to; omitted or empty subscribes to every resource of the type. */
  readonly names?: readonly string[];
  /** Throwing rejects the whole response: it is NACKed and nothing of it is applied. */
  decode(name: string, bytes: Uint8Array): T;
  apply(changes: XdsChanges<T>): void;
}

/**
 * How to dial: fixed credentials, or a function called before every (re)connect that returns the
 * same object while nothing changed and a new one when it did (a rotated root certificate), which
 * makes the client open a new channel with it. A throw fails that attempt; it is retried.
 */
export type CredentialsSource = ChannelCredentials | (() => ChannelCredentials | Promise<ChannelCredentials>);

/** gRPC call metadata; a function is called on every (re)connect, so a rotated token is picked up. */
export type CallMetadataSource =
  | Record<string, string>
  | (() => Record<string, string> | Promise<Record<string, string>>);

export interface DeltaAdsClientOptions {
  /** "host:port" of the control plane. */
  address: string;
  node: Omit<XdsNode, "metadata"> & { metadata?: Record<string, unknown> };
  handlers: readonly XdsResourceHandler<unknown>[];
  logger: Logger;
  /** Plaintext when omitted. */
  credentials?: CredentialsSource;
  /** E.g. `{ authorization: "Bearer <token>" }`. */
  metadata?: CallMetadataSource;
  backoff?: { initialMs?: number; maxMs?: number };
  channelOptions?: ChannelOptions;
}

export interface XdsNackInfo {
  typeUrl: string;
  nonce: string;
  message: string;
}

export interface DeltaAdsClientEvents {
  /** The first response arrived on a new stream. */
  connected: [];
  /** The stream ended or could not be opened; a reconnect is scheduled. */
  disconnected: [error: AmbientError | undefined];
  /** Every subscribed type has had a response applied. Emitted once. */
  synced: [];
  nack: [info: XdsNackInfo];
}

// Istio's xDS clients retry from 0.5 s, doubling to 30 s.
const DEFAULT_BACKOFF_INITIAL_MS = 500;
const DEFAULT_BACKOFF_MAX_MS = 30_000;

type DeltaCall = ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

export class DeltaAdsClient extends EventEmitter<DeltaAdsClientEvents> {
  /** Made on the first connect, and again whenever the credentials source returns new credentials. */
  private grpcClient: Client | undefined;
  private grpcCredentials: ChannelCredentials | undefined;
  private failure: AmbientError | undefined;
  private readonly handlers = new Map<string, XdsResourceHandler<unknown>>();
  /** typeUrl -> name -> version of what the handlers hold. */
  private readonly held = new Map<string, Map<string, string>>();
  private readonly syncedTypes = new Set<string>();
  private readonly backoff: Backoff;
  private readonly logger: Logger;
  private call: DeltaCall | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private state: "idle" | "running" | "closed" = "idle";
  private everSynced = false;

  constructor(private readonly options: DeltaAdsClientOptions) {
    super();
    if (options.handlers.length === 0) throw new Error("an xDS client needs at least one resource handler");
    for (const handler of options.handlers) {
      if (this.handlers.has(handler.typeUrl)) throw new Error(`two xDS handlers for ${handler.typeUrl}`);
      this.handlers.set(handler.typeUrl, handler);
      this.held.set(handler.typeUrl, new Map());
    }
    this.logger = options.logger.child({ component: "xds-client", address: options.address });
    this.backoff = new Backoff(
      options.backoff?.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS,
      options.backoff?.maxMs ?? DEFAULT_BACKOFF_MAX_MS,
    );
  }

  start(): void {
    if (this.state !== "idle") return;
    this.state = "running";
    void this.connect();
  }

  /** Ends the stream and stops reconnecting. What the handlers hold stays theirs. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.retryTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.grpcClient?.close();
  }

  get synced(): boolean {
    return this.everSynced;
  }

  /** Why the last attempt failed or the last stream ended; cleared when a stream delivers again. */
  get lastError(): AmbientError | undefined {
    return this.failure;
  }

  /** name -> version of the resources of a type the client holds. */
  versions(typeUrl: string): ReadonlyMap<string, string> {
    return this.held.get(typeUrl) ?? new Map();
  }

  private async connect(): Promise<void> {
    let metadata: Metadata;
    let client: Client;
    try {
      client = await this.channel();
      metadata = await this.callMetadata();
    } catch (err) {
      // A token or root file that cannot be read: typed by its reader, naming the path.
      this.failure = findCode(err)?.startsWith("AMB_")
        ? (err as AmbientError)
        : new AmbientError(ErrorCode.XDS_STREAM, `cannot open the xDS stream: ${errorMessage(err)}`, {
            cause: err,
          });
      this.logger.warn(
        { code: this.failure.code, error: this.failure.message },
        "cannot open the xDS stream",
      );
      this.scheduleReconnect();
      return;
    }
    // close() ran while the channel or the token was being read: it may have missed a new channel.
    if (this.state !== "running") {
      this.grpcClient?.close();
      return;
    }

    const method = protos().deltaAggregatedResources;
    const call = client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize as (value: DeltaDiscoveryRequest) => Buffer,
      method.responseDeserialize as (bytes: Buffer) => DeltaDiscoveryResponse,
      metadata,
    );
    this.call = call;
    let connected = false;
    call.on("data", (response: DeltaDiscoveryResponse) => {
      if (this.call !== call) return;
      if (!connected) {
        connected = true;
        this.failure = undefined;
        this.logger.info("xDS stream established");
        this.emit("connected");
      }
      this.backoff.reset();
      this.handleResponse(call, response);
    });
    // Every ending, failed or not, also arrives as 'status'; handled there.
    call.on("error", () => {});
    call.on("status", (s: StatusObject) => this.onStreamEnd(call, s));

    // The node goes on the first request of the stream only; one request opens each type.
    const node = nodeToWire({ ...this.options.node, metadata: this.options.node.metadata ?? {} });
    let first = true;
    for (const [typeUrl, handler] of this.handlers) {
      call.write(
        request(typeUrl, {
          node: first ? node : null,
          resourceNamesSubscribe: [...(handler.names ?? [])],
          initialResourceVersions: Object.fromEntries(this.held.get(typeUrl) ?? []),
        }),
      );
      first = false;
    }
  }

  private handleResponse(call: DeltaCall, response: DeltaDiscoveryResponse): void {
    const { typeUrl, nonce } = response;
    const handler = this.handlers.get(typeUrl);
    if (!handler) {
      this.nack(call, typeUrl, nonce, `not subscribed to ${typeUrl}`);
      return;
    }

    // Decode everything before touching the handler's state: a response applies whole or not at all.
    const upserts = new Map<string, unknown>();
    const versions = new Map<string, string>();
    for (const resource of response.resources) {
      try {
        upserts.set(resource.name, decodeResource(handler, resource));
        versions.set(resource.name, resource.version);
      } catch (err) {
        this.nack(call, typeUrl, nonce, `resource "${resource.name}": ${errorMessage(err)}`);
        return;
      }
    }
    const held = this.held.get(typeUrl)!;
    const removes = response.removedResources.filter((name) => held.has(name) && !upserts.has(name));

    try {
      handler.apply({ upserts, removes });
    } catch (err) {
      this.nack(call, typeUrl, nonce, `applying the update: ${errorMessage(err)}`);
      return;
    }
    for (const [name, version] of versions) held.set(name, version);
    for (const name of removes) held.delete(name);
    call.write(request(typeUrl, { responseNonce: nonce }));
    this.logger.debug(
      { type: typeUrl, nonce, upserts: upserts.size, removes: removes.length },
      "xDS update applied",
    );
    this.markSynced(typeUrl);
  }

  private nack(call: DeltaCall, typeUrl: string, nonce: string, message: string): void {
    this.logger.warn({ type: typeUrl, nonce, error: message }, "rejected xDS response (NACK)");
    call.write(
      request(typeUrl, {
        responseNonce: nonce,
        errorDetail: { code: status.INVALID_ARGUMENT, message, details: [] },
      }),
    );
    this.emit("nack", { typeUrl, nonce, message });
  }

  private markSynced(typeUrl: string): void {
    this.syncedTypes.add(typeUrl);
    if (this.everSynced || this.syncedTypes.size < this.handlers.size) return;
    this.everSynced = true;
    this.logger.info("xDS synced");
    this.emit("synced");
  }

  private onStreamEnd(call: DeltaCall, end: StatusObject): void {
    // Not the current call: close() cancelled it, and nobody waits for it.
    if (this.call !== call) return;
    this.call = undefined;
    const error =
      end.code === status.OK
        ? undefined
        : new AmbientError(ErrorCode.XDS_STREAM, `xDS stream ended: ${status[end.code]} ${end.details}`, {
            details: { address: this.options.address, code: end.code },
          });
    if (error) this.failure = error;
    this.logger.warn({ error: error?.message }, "xDS stream ended; keeping the last configuration");
    this.emit("disconnected", error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.state !== "running") return;
    const delayMs = this.backoff.next();
    this.logger.info({ delayMs }, "xDS reconnect scheduled");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delayMs);
  }

  /** The channel for this attempt: the current one, or a new one when the credentials changed. */
  private async channel(): Promise<Client> {
    const source = this.options.credentials;
    const creds =
      typeof source === "function"
        ? await source()
        : (source ?? this.grpcCredentials ?? credentials.createInsecure());
    if (this.grpcClient && creds === this.grpcCredentials) return this.grpcClient;
    if (this.grpcClient) this.logger.info("control plane credentials changed; opening a new channel");
    this.grpcClient?.close();
    this.grpcCredentials = creds;
    this.grpcClient = new Client(this.options.address, creds, this.options.channelOptions ?? {});
    return this.grpcClient;
  }

  private async callMetadata(): Promise<Metadata> {
    const source = this.options.metadata;
    const values = typeof source === "function" ? await source() : (source ?? {});
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(values)) metadata.set(key, value);
    return metadata;
  }
}

function decodeResource(handler: XdsResourceHandler<unknown>, resource: WireResource): unknown {
  const body = resource.resource;
  if (!body) throw new Error("no resource body");
  if (body.type_url !== handler.typeUrl)
    throw new Error(`carries ${body.type_url}, expected ${handler.typeUrl}`);
  return handler.decode(resource.name, body.value);
}

function request(typeUrl: string, fields: Partial<DeltaDiscoveryRequest>): DeltaDiscoveryRequest {
  return {
    typeUrl,
    resourceNamesSubscribe: [],
    resourceNamesUnsubscribe: [],
    initialResourceVersions: {},
    responseNonce: "",
    ...fields,
  };
}
