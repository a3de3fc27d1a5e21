// Test helpers for code that serves or consumes Delta ADS: a server on a loopback port, and a raw
// stream that sends hand-made requests and hands back each response, to assert on the protocol.

import {
  Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
} from "@grpc/grpc-js";
import type { Logger } from "../telemetry/logging.js";
import { addDeltaAdsService, type DeltaAdsHooks, DeltaAdsServer } from "./delta-server.js";
import { protos } from "./proto.js";
import type { ResourceStore } from "./resource-store.js";
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from "./wire.js";

export interface RunningAdsServer {
  server: Server;
  ads: DeltaAdsServer;
  address: string;
  port: number;
  stop(): Promise<void>;
}

/** A grpc-js server with only Delta ADS, on 127.0.0.1 (`port` 0 picks a free one). */
export async function startAdsServer(options: {
  store: ResourceStore;
  logger: Logger;
  hooks?: DeltaAdsHooks;
  port?: number;
}): Promise<RunningAdsServer> {
  const server = new Server();
  const ads = new DeltaAdsServer(options);
  addDeltaAdsService(server, ads);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  return {
    server,
    ads,
    port,
    address: `127.0.0.1:${port}`,
    stop: async () => {
      ads.close();
      server.forceShutdown();
    },
  };
}

/** One DeltaAggregatedResources stream driven by hand. */
export class RawDeltaStream {
  private readonly client: Client;
  private readonly call: ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  private readonly queue: DeltaDiscoveryResponse[] = [];
  private waiter: (() => void) | undefined;
  ended = false;

  constructor(address: string, metadata: Record<string, string> = {}) {
    this.client = new Client(address, credentials.createInsecure());
    const method = protos().deltaAggregatedResources;
    const md = new Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    this.call = this.client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize as (value: DeltaDiscoveryRequest) => Buffer,
      method.responseDeserialize as (bytes: Buffer) => DeltaDiscoveryResponse,
      md,
    );
    this.call.on("data", (response: DeltaDiscoveryResponse) => {
      this.queue.push(response);
      this.waiter?.();
    });
    this.call.on("error", () => {});
    this.call.on("status", () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  send(request: Partial<DeltaDiscoveryRequest> & { typeUrl: string }): void {
    this.call.write({
      resourceNamesSubscribe: [],
      resourceNamesUnsubscribe: [],
      initialResourceVersions: {},
      responseNonce: "",
      ...request,
    });
  }

  /** The next response, waiting up to `timeoutMs` for it. */
  async next(timeoutMs = 2_000): Promise<DeltaDiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) throw new Error("stream ended");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no xDS response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift()!;
  }

  /** Fails if a response arrives within `ms`. */
  async expectSilence(ms = 150): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length > 0) throw new Error(`unexpected xDS response: ${JSON.stringify(this.queue[0])}`);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
