// The Delta ADS server: accepts DeltaAggregatedResources streams, fans every store change out to
// them (one response per stream and change batch), and reports who is connected. The protocol of
// a single stream lives in delta-stream.ts.

import type { Server } from "@grpc/grpc-js";
import { errorMessage } from "../errors/errors.js";
import type { Logger } from "../telemetry/logging.js";
import {
  type AckEvent,
  type DeltaCall,
  DeltaStream,
  type NackEvent,
  type ResourceVisibility,
  type StreamEvents,
  type XdsClientInfo,
} from "./delta-stream.js";
import { protos } from "./proto.js";
import type { ResourceStore } from "./resource-store.js";
import type { DeltaDiscoveryRequest } from "./wire.js";

export type { AckEvent, NackEvent, ResourceVisibility, XdsClientInfo } from "./delta-stream.js";

export interface DeltaAdsHooks {
  /** After the first request of a stream, which carries the client's node. */
  onStreamOpen?(client: XdsClientInfo): void;
  /** `error` is set when the stream failed rather than being closed by either side. */
  onStreamClose?(client: XdsClientInfo, error?: Error): void;
  onAck?(event: AckEvent): void;
  onNack?(event: NackEvent): void;
}

export interface DeltaAdsServerOptions {
  store: ResourceStore;
  logger: Logger;
  hooks?: DeltaAdsHooks;
}

export class DeltaAdsServer {
  /** Open streams, each with the function that ends it from our side. */
  private readonly streams = new Map<number, { stream: DeltaStream; end: () => void }>();
  private readonly logger: Logger;
  private readonly stopWatching: () => void;
  private nextStreamId = 1;

  constructor(private readonly options: DeltaAdsServerOptions) {
    this.logger = options.logger.child({ component: "xds-server" });
    this.stopWatching = options.store.onChange((change) => {
      for (const { stream } of this.streams.values()) this.guard("push", () => stream.push(change));
    });
  }

  /**
   * The grpc-js handler for DeltaAggregatedResources; see `addDeltaAdsService`. `visible`: what this
   * stream's caller may receive (default: everything).
   */
  readonly handleStream = (call: DeltaCall, visible?: ResourceVisibility): void => {
    const id = this.nextStreamId++;
    const stream = new DeltaStream(
      id,
      call.getPeer(),
      call,
      this.options.store,
      this.streamEvents,
      this.logger,
      visible,
    );
    this.logger.debug({ stream: id, peer: stream.peer }, "xDS stream accepted");

    let finished = false;
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      stream.close();
      this.streams.delete(id);
      const fields = { stream: id, node: stream.node?.id, peer: stream.peer };
      if (error) this.logger.warn({ ...fields, error: error.message }, "xDS stream failed");
      else this.logger.info(fields, "xDS stream closed");
      if (stream.node)
        this.guard("onStreamClose", () => this.options.hooks?.onStreamClose?.(stream.info(), error));
    };

    const end = (error?: Error) => {
      if (finished) return;
      finish(error);
      call.end();
    };
    this.streams.set(id, { stream, end: () => end() });

    call.on("data", (request: DeltaDiscoveryRequest) => {
      try {
        stream.handleRequest(request);
      } catch (err) {
        // A bug in handling one request must not leave the client half-served: end the stream so
        // it reconnects and starts over from initial_resource_versions.
        end(err instanceof Error ? err : new Error(errorMessage(err)));
      }
    });
    // The client half-closed: close our side too.
    call.on("end", () => end());
    call.on("cancelled", () => finish());
    call.on("error", (err: Error) => finish(err));
    call.on("close", () => finish());
  };

  /** Every open stream that has identified itself. */
  clients(): XdsClientInfo[] {
    return [...this.streams.values()]
      .filter(({ stream }) => stream.node !== undefined)
      .map(({ stream }) => stream.info());
  }

  /** Ends every stream; clients reconnect and resume from the versions they hold. */
  disconnectAll(): void {
    for (const { end } of [...this.streams.values()]) end();
  }

  /** Stops following the store and ends every stream. The grpc-js server is the caller's. */
  close(): void {
    this.stopWatching();
    this.disconnectAll();
  }

  private readonly streamEvents: StreamEvents = {
    opened: (stream) => {
      this.logger.info(
        { stream: stream.id, node: stream.node?.id, peer: stream.peer },
        "xDS client connected",
      );
      this.guard("onStreamOpen", () => this.options.hooks?.onStreamOpen?.(stream.info()));
    },
    ack: (event) => this.guard("onAck", () => this.options.hooks?.onAck?.(event)),
    nack: (event) => this.guard("onNack", () => this.options.hooks?.onNack?.(event)),
  };

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ error: errorMessage(err) }, `xDS ${what} failed`);
    }
  }
}

/** Registers `ads` as the AggregatedDiscoveryService of `server` (delta method only). */
export function addDeltaAdsService(server: Server, ads: DeltaAdsServer): void {
  server.addService(protos().adsService, { DeltaAggregatedResources: ads.handleStream });
}
