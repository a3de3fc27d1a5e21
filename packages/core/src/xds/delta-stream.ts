// One client's Delta ADS stream on the server: its subscriptions per type URL, what it holds
// (name -> version, as far as the server knows), and the responses that bring it up to date.
// Envoy's incremental xDS protocol, as istiod speaks it to ztunnel.

import { randomUUID } from "node:crypto";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { Logger } from "../telemetry/logging.js";
import { packAny } from "./codec.js";
import type { ResourceStore, StoreChange } from "./resource-store.js";
import {
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  nodeFromWire,
  type WireResource,
  type XdsNode,
} from "./wire.js";

/** A client's subscription to one type, for hooks, metrics and `ambientctl`. */
export interface XdsSubscriptionInfo {
  typeUrl: string;
  /** Subscribed to every resource of the type. */
  wildcard: boolean;
  /** Explicitly subscribed names (besides the wildcard, if any). */
  names: string[];
  /** How many resources the client holds. */
  resources: number;
  lastSentNonce?: string;
  lastAckedNonce?: string;
  lastNack?: { nonce: string; message: string };
}

export interface XdsClientInfo {
  streamId: number;
  peer: string;
  node: XdsNode;
  connectedAt: Date;
  subscriptions: XdsSubscriptionInfo[];
}

export interface AckEvent {
  client: XdsClientInfo;
  typeUrl: string;
  nonce: string;
}

export interface NackEvent extends AckEvent {
  /** google.rpc.Code the client reported; 3 (INVALID_ARGUMENT) from Ambient and Envoy. */
  code: number;
  message: string;
}

/** Called by the stream; the server wraps the user's hooks so a throwing hook is only logged. */
export interface StreamEvents {
  opened(stream: DeltaStream): void;
  ack(event: AckEvent): void;
  nack(event: NackEvent): void;
}

export type DeltaCall = ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/**
 * Which resources one stream may receive. A resource it may not see is, to that client, a
 * resource that does not exist: never sent, and answered "removed" when asked for by name. The
 * server decides this per stream from who the caller authenticated as (Kubernetes mode: a TLS
 * Secret reaches only the proxies of the Secret's namespace, as istiod's SDS authorizes).
 */
export type ResourceVisibility = (typeUrl: string, name: string) => boolean;

interface Subscription {
  readonly typeUrl: string;
  wildcard: boolean;
  readonly names: Set<string>;
  /** name -> version the client holds: what it was last sent, or told us it had on reconnect. */
  readonly held: Map<string, string>;
  lastSentNonce?: string;
  lastAckedNonce?: string;
  lastNack?: { nonce: string; message: string };
}

const WILDCARD = "*";

export class DeltaStream {
  readonly connectedAt = new Date();
  node: XdsNode | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  private closed = false;

  constructor(
    readonly id: number,
    readonly peer: string,
    private readonly call: DeltaCall,
    private readonly store: ResourceStore,
    private readonly events: StreamEvents,
    private readonly logger: Logger,
    private readonly visible: ResourceVisibility = () => true,
  ) {}

  handleRequest(request: DeltaDiscoveryRequest): void {
    if (this.closed) return;
    if (!this.node) {
      // Only the first request of a stream has to carry the node.
      this.node = nodeFromWire(request.node);
      this.events.opened(this);
    }
    const { typeUrl } = request;
    if (!typeUrl) {
      this.logger.warn({ stream: this.id, node: this.node.id }, "xDS request without type_url ignored");
      return;
    }
    const subscription = this.subscriptions.get(typeUrl);
    if (request.responseNonce) this.acknowledge(typeUrl, subscription, request);
    if (subscription) this.updateSubscription(subscription, request);
    else this.subscribe(request);
  }

  /** Sends the part of a store change this client subscribes to, as one response. */
  push(change: StoreChange): void {
    const subscription = this.subscriptions.get(change.typeUrl);
    if (!subscription || this.closed) return;
    this.respond(subscription, [...change.upserted.keys(), ...change.removed], new Set(), false);
  }

  close(): void {
    this.closed = true;
  }

  info(): XdsClientInfo {
    return {
      streamId: this.id,
      peer: this.peer,
      node: this.node ?? { id: "", cluster: "", metadata: {} },
      connectedAt: this.connectedAt,
      subscriptions: [...this.subscriptions.values()].map((s) => ({
        typeUrl: s.typeUrl,
        wildcard: s.wildcard,
        names: [...s.names],
        resources: s.held.size,
        ...(s.lastSentNonce === undefined ? {} : { lastSentNonce: s.lastSentNonce }),
        ...(s.lastAckedNonce === undefined ? {} : { lastAckedNonce: s.lastAckedNonce }),
        ...(s.lastNack === undefined ? {} : { lastNack: s.lastNack }),
      })),
    };
  }

  /**
   * The first request for a type opens the subscription. No names (or "*") means every resource
   * of the type. initial_resource_versions says what the client kept from an earlier stream, so
   * only differences are sent. The first request is always answered, even with nothing, so the
   * client knows it is in sync.
   */
  private subscribe(request: DeltaDiscoveryRequest): void {
    const requested = request.resourceNamesSubscribe;
    const subscription: Subscription = {
      typeUrl: request.typeUrl,
      wildcard: requested.length === 0 || requested.includes(WILDCARD),
      names: new Set(requested.filter((name) => name !== WILDCARD)),
      held: new Map(Object.entries(request.initialResourceVersions)),
    };
    this.subscriptions.set(request.typeUrl, subscription);
    const { held, names } = subscription;
    if (!subscription.wildcard) {
      for (const name of held.keys()) if (!names.has(name)) held.delete(name);
    }
    // A requested name the client does not hold must be answered, if only with "does not exist".
    const force = new Set([...names].filter((name) => !held.has(name)));
    const candidates = subscription.wildcard ? [...this.store.resources(request.typeUrl).keys()] : [...names];
    this.respond(subscription, [...candidates, ...held.keys()], force, true);
  }

  private updateSubscription(subscription: Subscription, request: DeltaDiscoveryRequest): void {
    for (const name of request.resourceNamesUnsubscribe) {
      if (name === WILDCARD) {
        subscription.wildcard = false;
        // The client drops what it held only through the wildcard.
        for (const held of subscription.held.keys())
          if (!subscription.names.has(held)) subscription.held.delete(held);
      } else {
        subscription.names.delete(name);
        if (!subscription.wildcard) subscription.held.delete(name);
      }
    }

    const candidates: string[] = [];
    const force = new Set<string>();
    for (const name of request.resourceNamesSubscribe) {
      if (name === WILDCARD) {
        if (!subscription.wildcard) candidates.push(...this.store.resources(subscription.typeUrl).keys());
        subscription.wildcard = true;
      } else if (!subscription.names.has(name)) {
        subscription.names.add(name);
        // Envoy: resend on subscribe even if the client had it; it may have dropped it since.
        force.add(name);
        candidates.push(name);
      }
    }
    if (candidates.length > 0) this.respond(subscription, candidates, force, false);
  }

  private acknowledge(
    typeUrl: string,
    subscription: Subscription | undefined,
    request: DeltaDiscoveryRequest,
  ): void {
    const nonce = request.responseNonce;
    const error = request.errorDetail;
    const client = this.info();
    if (error) {
      // The client kept its previous state. Resending the same resources would be rejected again,
      // so nothing is resent: what the rejected response carried reaches the client when it next
      // changes, or on reconnect, where initial_resource_versions says what the client really holds.
      if (subscription) subscription.lastNack = { nonce, message: error.message };
      this.logger.warn(
        {
          stream: this.id,
          node: client.node.id,
          type: typeUrl,
          nonce,
          code: error.code,
          error: error.message,
        },
        "xDS client rejected a response (NACK)",
      );
      this.events.nack({ client, typeUrl, nonce, code: error.code, message: error.message });
    } else {
      if (subscription) subscription.lastAckedNonce = nonce;
      this.logger.debug({ stream: this.id, node: client.node.id, type: typeUrl, nonce }, "xDS ACK");
      this.events.ack({ client, typeUrl, nonce });
    }
  }

  /**
   * Sends, as one response, every candidate the client lacks or holds in another version, and
   * removals for candidates it holds that no longer exist. `force` names are sent even if current.
   */
  private respond(
    subscription: Subscription,
    candidates: Iterable<string>,
    force: ReadonlySet<string>,
    always: boolean,
  ) {
    const { typeUrl, held } = subscription;
    const resources: WireResource[] = [];
    const removed: string[] = [];
    for (const name of new Set(candidates)) {
      const stored = this.visible(typeUrl, name) ? this.store.get(typeUrl, name) : undefined;
      if (stored) {
        if (!subscription.wildcard && !subscription.names.has(name)) continue;
        if (!force.has(name) && held.get(name) === stored.version) continue;
        resources.push({ name, version: stored.version, resource: packAny(typeUrl, stored.resource) });
        held.set(name, stored.version);
      } else if (held.delete(name) || force.has(name)) {
        removed.push(name);
      }
    }
    if (resources.length === 0 && removed.length === 0 && !always) return;

    const nonce = randomUUID();
    subscription.lastSentNonce = nonce;
    this.call.write({
      systemVersionInfo: this.store.systemVersion,
      resources,
      typeUrl,
      removedResources: removed,
      nonce,
    });
    this.logger.debug(
      {
        stream: this.id,
        node: this.node?.id,
        type: typeUrl,
        nonce,
        resources: resources.length,
        removed: removed.length,
      },
      "xDS push",
    );
  }
}
